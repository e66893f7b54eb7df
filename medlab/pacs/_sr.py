"""Measurements of segments as a DICOM SR imaging measurement report (TID 1500, highdicom),
and the reader for what is written."""

from __future__ import annotations

from pathlib import Path

from medlab.errors import ImageIOError

# name -> (concept (value, scheme, meaning), derivation or None, UCUM unit (code, meaning))
MEASUREMENTS = {
    "volume_ml": (("118565006", "SCT", "Volume"), None, ("ml", "milliliter")),
    "volume_mm3": (("118565006", "SCT", "Volume"), None, ("mm3", "cubic millimeter")),
    "longest_diameter_mm": (("103339001", "SCT", "Long axis"), None, ("mm", "millimeter")),
    "short_axis_mm": (("103340004", "SCT", "Short axis"), None, ("mm", "millimeter")),
    "circumference_mm": (("74551000", "SCT", "Circumference"), None, ("mm", "millimeter")),
    "area_mm2": (("42798000", "SCT", "Area"), None, ("mm2", "square millimeter")),
    "mean_hu": (("112031", "DCM", "Attenuation Coefficient"), ("373098007", "SCT", "Mean"),
                ("[hnsf'U]", "Hounsfield unit")),
    "suv_max": (("126401", "DCM", "SUVbw"), ("56851009", "SCT", "Maximum"),
                ("{SUVbw}g/ml", "Standardized Uptake Value body weight")),
    "suv_mean": (("126401", "DCM", "SUVbw"), ("373098007", "SCT", "Mean"),
                 ("{SUVbw}g/ml", "Standardized Uptake Value body weight")),
    "suv_peak": (("126401", "DCM", "SUVbw"), ("126031", "DCM", "Peak Value Within ROI"),
                 ("{SUVbw}g/ml", "Standardized Uptake Value body weight")),
    "mtv_ml": (("126032", "DCM", "Metabolic Volume"), None, ("ml", "milliliter")),
    "tlg_g": (("126033", "DCM", "Total Lesion Glycolysis"), None, ("g", "gram")),
}
_BY_CODE = {(spec[0][:2], spec[1][:2] if spec[1] else None, spec[2][0]): name for name, spec in MEASUREMENTS.items()}


def _code(t):
    from pydicom.sr.coding import Code

    return Code(t[0], t[1], t[2])


def write_sr(path, *, seg, source, measurements: dict, series_description: str = "medlab measurement report", series_number: int = 901,
             overwrite: bool = False) -> Path:
    """Write measurements of the segments of a DICOM SEG as a DICOM SR (TID 1500).

    Each segment measured becomes one volumetric measurement group (TID 1411) that references
    the segment (SEG instance + segment number, and the source series) and carries its
    segment label as tracking identifier.

    Parameters
    ----------
    path : str or os.PathLike
        Output ``.dcm`` file.
    seg : str, os.PathLike or pydicom.Dataset
        The DICOM SEG the measurements were made on (written by :func:`write_seg`).
    source : str, os.PathLike, or list of paths / datasets
        The source series of the SEG (the SR's evidence and patient/study context).
    measurements : dict
        ``{segment_number: {name: value}}``; names are the keys of :data:`MEASUREMENTS`
        (``volume_ml``, ``longest_diameter_mm``, ``mean_hu``, ``suv_max``, ``suv_peak``,
        ``mtv_ml``, ``tlg_g``, ...), each with its concept, derivation and UCUM unit. Values
        are stored as DICOM decimal strings (16 characters).
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    pathlib.Path
        The file written (atomically).
    """
    import highdicom as hd
    import numpy as np
    import pydicom
    from pydicom.sr.codedict import codes

    import medlab
    from medlab.pacs._common import save_dataset
    from medlab.pacs._seg import source_datasets

    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"`path` {path} exists; pass overwrite=True to replace it")
    seg_ds = seg if isinstance(seg, pydicom.Dataset) else pydicom.dcmread(seg)
    if str(seg_ds.get("Modality", "")) != "SEG":
        raise ValueError("`seg` is not a DICOM SEG")
    labels = {int(s.SegmentNumber): str(s.SegmentLabel) for s in seg_ds.SegmentSequence}
    datasets = source_datasets(source)
    source_series = str(datasets[0].SeriesInstanceUID)
    if not measurements:
        raise ValueError("`measurements` is empty")
    groups = []
    for number, values in measurements.items():
        if int(number) not in labels:
            raise ValueError(f"`measurements`: segment {number} is not in the SEG (segments {sorted(labels)})")
        items = []
        for name, value in values.items():
            if name not in MEASUREMENTS:
                import difflib

                close = difflib.get_close_matches(name, list(MEASUREMENTS), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ValueError(f"`measurements`: unknown measurement {name!r}{hint}")
            if not np.isfinite(float(value)):
                raise ValueError(f"`measurements`: {name} of segment {number} is {value}")
            concept, derivation, unit = MEASUREMENTS[name]
            items.append(hd.sr.Measurement(
                name=_code(concept), value=float(value), unit=_code((unit[0], "UCUM", unit[1])),
                derivation=_code(derivation) if derivation else None))
        groups.append(hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=labels[int(number)]),
            referenced_segment=hd.sr.ReferencedSegment(
                sop_class_uid=str(seg_ds.SOPClassUID), sop_instance_uid=str(seg_ds.SOPInstanceUID),
                segment_number=int(number),
                source_series=hd.sr.SourceSeriesForSegmentation(source_series)),
            measurements=items))
    observer = hd.sr.ObservationContext(observer_device_context=hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=hd.UID(), name="medlab", manufacturer_name="medlab", model_name=medlab.__version__)))
    procedure = codes.LN.CTUnspecifiedBodyRegion if str(datasets[0].Modality) == "CT" else codes.SCT.ImagingProcedure
    report = hd.sr.MeasurementReport(observation_context=observer, procedure_reported=procedure,
                                     imaging_measurements=groups)
    sr = hd.sr.Comprehensive3DSR(
        evidence=[seg_ds], content=report, series_instance_uid=hd.UID(), series_number=series_number,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="medlab", is_complete=True,
        series_description=series_description)
    return save_dataset(sr, path)


def segment_measurements(labels, image, *, modality: str = "CT") -> dict:
    """The standard measurements of every segment of a label image, ready for :func:`write_sr`.

    Parameters
    ----------
    labels : SimpleITK.Image or list of SimpleITK.Image
        Label image (label ``k`` = segment number ``k``) on the grid of ``image``, or one
        binary mask per segment (segment ``k`` = the k-th mask; they may overlap).
    image : SimpleITK.Image
        CT in HU or PET in SUV, 3D.
    modality : {'CT', 'PT'}
        CT: ``volume_ml``, ``longest_diameter_mm`` (RECIST, axial), ``mean_hu``. PT (SUV):
        ``volume_ml``, ``longest_diameter_mm``, ``suv_max``, ``suv_mean``, ``suv_peak``,
        ``mtv_ml``, ``tlg_g`` (:func:`medlab.segmentation.suv_metrics`).

    Returns
    -------
    dict
        ``{segment_number: {name: value}}`` for every label present.
    """
    import numpy as np
    import SimpleITK as sitk

    from medlab import segmentation
    from medlab._options import check_choice

    modality = check_choice("modality", modality.upper(), ("CT", "PT"))
    if isinstance(labels, list | tuple):
        out = {}
        for k, mask in enumerate(labels, start=1):
            binary = sitk.Cast(sitk.NotEqual(mask, 0), sitk.sitkUInt8)
            out.update({k: v for v in segment_measurements(binary, image, modality=modality).values()})
        return out
    stats = segmentation.label_statistics(labels, image)
    arr = sitk.GetArrayViewFromImage(labels)
    out = {}
    for row in stats.itertuples():
        mask = sitk.GetImageFromArray((arr == row.label).astype(np.uint8))
        mask.CopyInformation(labels)
        values = {"volume_ml": float(row.volume_ml),
                  "longest_diameter_mm": float(segmentation.longest_diameter(mask))}
        if modality == "CT":
            values["mean_hu"] = float(row.mean)
        else:
            m = segmentation.suv_metrics(image, mask)
            values.update(suv_max=m["suvmax"], suv_mean=m["suvmean"], suv_peak=m["suvpeak"],
                          mtv_ml=m["mtv_ml"], tlg_g=m["tlg"])
        out[int(row.label)] = values
    return out


def _walk(items):
    for item in items:
        yield item
        if "ContentSequence" in item:
            yield from _walk(item.ContentSequence)


def _name(item) -> tuple[str, str, str]:
    c = item.ConceptNameCodeSequence[0]
    return str(c.CodeValue), str(c.CodingSchemeDesignator), str(c.CodeMeaning)


def read_sr(path):
    """Read the measurements of a DICOM SR measurement report (TID 1500).

    Parameters
    ----------
    path : str or os.PathLike
        The SR file (e.g. written by :func:`write_sr`).

    Returns
    -------
    pandas.DataFrame
        One row per measurement: ``tracking_id``, ``seg_sop_uid`` and ``segment_number``
        (the referenced segment), ``name`` (the :data:`MEASUREMENTS` key, or None for a
        measurement it does not know), ``concept``, ``derivation`` (code meanings),
        ``value`` (float) and ``unit`` (UCUM code).
    """
    import pandas as pd
    import pydicom

    try:
        ds = pydicom.dcmread(path)
    except Exception as exc:
        raise ImageIOError(path, f"not a readable DICOM file: {exc}") from None
    if str(ds.get("Modality", "")) != "SR" or "ContentSequence" not in ds:
        raise ImageIOError(path, "not a DICOM SR document")
    rows = []
    for group in _walk(ds.ContentSequence):
        if group.get("ValueType") != "CONTAINER" or _name(group)[:2] != ("125007", "DCM"):
            continue  # 125007 DCM "Measurement Group"
        tracking, seg_uid, seg_number = None, None, None
        for item in group.get("ContentSequence", []):
            code = _name(item)[:2]
            if code == ("112039", "DCM"):  # Tracking Identifier
                tracking = str(item.TextValue)
            elif code == ("121191", "DCM"):  # Referenced Segment
                ref = item.ReferencedSOPSequence[0]
                seg_uid = str(ref.ReferencedSOPInstanceUID)
                seg_number = int(ref.ReferencedSegmentNumber[0] if ref["ReferencedSegmentNumber"].VM > 1
                                 else ref.ReferencedSegmentNumber)
        for item in group.get("ContentSequence", []):
            if item.get("ValueType") != "NUM":
                continue
            mv = item.MeasuredValueSequence[0]
            unit = mv.MeasurementUnitsCodeSequence[0]
            derivation = None
            for mod in item.get("ContentSequence", []):
                if _name(mod)[:2] == ("121401", "DCM"):  # Derivation
                    c = mod.ConceptCodeSequence[0]
                    derivation = (str(c.CodeValue), str(c.CodingSchemeDesignator), str(c.CodeMeaning))
            concept = _name(item)
            key = (concept[:2], derivation[:2] if derivation else None, str(unit.CodeValue))
            rows.append({"tracking_id": tracking, "seg_sop_uid": seg_uid, "segment_number": seg_number,
                         "name": _BY_CODE.get(key), "concept": concept[2],
                         "derivation": derivation[2] if derivation else None,
                         "value": float(mv.NumericValue), "unit": str(unit.CodeValue)})
    return pd.DataFrame(rows, columns=["tracking_id", "seg_sop_uid", "segment_number", "name", "concept",
                                       "derivation", "value", "unit"])
