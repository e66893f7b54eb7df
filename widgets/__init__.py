"""medlab.widgets: interactive Jupyter components on top of the ``medlab`` processing library.

Installed from the top-level ``widgets/`` folder as the subpackage ``medlab.widgets``.
``medlab`` itself never imports this package.
"""
