"""medlab's napari plugin (npe2 manifest ``napari.yaml``, entry point ``napari.manifest``).

- Reader: a DICOM series folder, NIfTI (``.nii``, ``.nii.gz``), NRRD (``.nrrd``, ``.nhdr``) and
  single DICOM files, through :func:`medlab.io.read`; the geometry becomes the layer's ``scale``
  (voxel size, mm) and ``translate`` (origin, mm), in napari's ``(z, y, x)`` order, on the image
  reoriented to LPS (so no rotation is lost).
- Sample data from :mod:`medlab.datasets`: the CT phantom with its lesions, the IBSI CT phantom
  with its GTV, an HC18 ultrasound with its head mask.
- Dock widgets (magicgui): threshold, region growing from a Points layer, registration blend
  (register, then alpha / checkerboard / difference), and the U-Net / CNN runner with Grad-CAM.

Install: ``pip install 'medlab[napari]'`` (napari with PyQt6). The computations live in
:mod:`._layers` (no napari import), so they are tested without a viewer.
"""
