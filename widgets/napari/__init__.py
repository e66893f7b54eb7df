"""medlab's napari plugin (npe2 manifest ``napari.yaml``, entry point ``napari.manifest``).

- Reader: a DICOM series folder (or a folder above one: several series are listed in the error),
  NIfTI (``.nii``, ``.nii.gz``), NRRD (``.nrrd``, ``.nhdr``), MetaImage and single DICOM files,
  through :func:`medlab.io.read`; the geometry becomes the layer's ``scale`` (voxel size, mm),
  ``translate`` (origin, mm) and ``rotate``, in napari's ``(z, y, x)`` order, on the image
  reoriented to LPS. Layers carry units (mm) and anatomical axis names (``I→S``, ``A→P``,
  ``R→L``); DICOM layers are named after the series description; CT opens in the soft-tissue
  window; label maps (``mask``/``label``/``seg`` in the name, few integer values) open as Labels;
  an RTSTRUCT or DICOM SEG opens as Labels on the series it references.
- Display (:mod:`._view`): superior up in coronal and sagittal views, orientation letters in the
  text overlay, the scale bar on; a "Window" dock with :mod:`medlab.enhance`'s presets.
- Writers (:mod:`._writer`): Image and Labels layers to NIfTI, NRRD, MetaImage with spacing,
  origin and direction; Labels to DICOM SEG on the DICOM series they were drawn on.
- Sample data from :mod:`medlab.datasets`: the CT phantom with its lesions, the IBSI CT phantom
  with its GTV, an HC18 ultrasound with its head mask.
- Dock widgets (magicgui): threshold, region growing from a Points layer, registration blend
  (register, then alpha / checkerboard / difference), and the U-Net / CNN runner with Grad-CAM.
  Failures are napari notifications saying what to do; a re-run adds a new layer (painted edits
  are never replaced); a segmentation's volume (mL) and mean (HU, SUV) are shown.

Install: ``pip install 'medlab[napari]'`` (napari with PyQt6). The computations live in
:mod:`._layers` (no napari import), so they are tested without a viewer.
"""
