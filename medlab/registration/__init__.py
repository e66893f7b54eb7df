"""Image registration (rigid, affine, B-spline, demons) on SimpleITK; filled by the registration issue."""
