"""Measurements of segments as a DICOM SR imaging measurement report (TID 1500, highdicom),
and the reader for what is written."""

from __future__ import annotations

import functools
import re
from pathlib import Path

from medlab.errors import ImageIOError
from medlab._options import check_choice
from medlab.pacs._common import save_dataset

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
    # fetal biometry (DICOM CID 12005): LOINC's head circumference
    "head_circumference_mm": (("11984-2", "LN", "Head Circumference"), None, ("mm", "millimeter")),
}
_BY_CODE = {(spec[0][:2], spec[1][:2] if spec[1] else None, spec[2][0]): name for name, spec in MEASUREMENTS.items()}

# IBSI features (medlab.features): the concept is the feature's IBSI identifier (coding scheme
# "IBSI"), the measurement method the IBSI identifier of its texture aggregation.
IBSI_SCHEME = "IBSI"
IBSI_AGGREGATIONS = {
    "2D_avg": ("BTW3", "2D, averaged"), "2D_smrg": ("SUJT", "2D, slice-merged"),
    "2.5D_dmrg": ("JJUI", "2.5D, direction-merged"), "2.5D_mrg": ("ZW7Z", "2.5D, merged"),
    "3D_avg": ("ITBB", "3D, averaged"), "3D_mrg": ("IAZD", "3D, merged"),
    "2D": ("8QNN", "2D"), "2.5D": ("62GR", "2.5D"), "3D": ("KOBO", "3D"),
}
INTENSITY_UNITS = {
    "HU": ("[hnsf'U]", "Hounsfield unit"),
    "SUV": ("{SUVbw}g/ml", "Standardized Uptake Value body weight"),
    "arbitrary": ("[arb'U]", "arbitrary unit"),
}
_UNITY = ("1", "no units")
# morphology in mm; intensity statistics and local intensity in the image's unit (variance: its
# square); histogram, IVH fractions and texture (discretised grey levels) without a unit
_MORPH_UNITS = {"morph_vol": ("mm3", "cubic millimeter"), "morph_approx_vol": ("mm3", "cubic millimeter"),
                "morph_area": ("mm2", "square millimeter"), "morph_av": ("/mm", "per millimeter"),
                "morph_com": ("mm", "millimeter"), "morph_diam": ("mm", "millimeter"),
                "morph_pca_major": ("mm", "millimeter"), "morph_pca_minor": ("mm", "millimeter"),
                "morph_pca_least": ("mm", "millimeter")}
_INTENSITY_FEATURES = {"loc_peak_local", "loc_peak_global", "stat_mean", "stat_median", "stat_min", "stat_p10",
                       "stat_p90", "stat_max", "stat_iqr", "stat_range", "stat_mad", "stat_rmad", "stat_medad"}
_SQUARED_FEATURES = {"stat_var"}


@functools.lru_cache(maxsize=1)
def _ibsi_catalogue() -> dict:
    """medlab column -> (IBSI code, title, aggregation code or ''), from the IBSI document."""
    from medlab.features import ibsi_reference_values

    import unicodedata

    def plain(title: str) -> str:  # a CodeMeaning (LO) in any character set: ASCII, 64 characters
        title = re.sub(r":\w+:`([^`]*)`", r"\1", title).replace("\\ ", "").replace("\\", "/")  # reST markup
        title = title.translate(str.maketrans("\u2018\u2019\u201c\u201d\u2013\u2014", "''\"\"--"))
        return unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()[:64]

    ref = ibsi_reference_values(with_values=False)
    return {row.column: (row.ibsi_code, plain(row.title), row.aggregation)
            for row in ref.drop_duplicates("column").itertuples() if row.ibsi_code}  # the document misses one


def _ibsi_unit(column: str, feature: str, intensity_unit: str):
    if feature in _MORPH_UNITS:
        return _MORPH_UNITS[feature]
    if feature.startswith("morph_") and feature != "morph_integ_int":
        return _UNITY  # ratios, densities, sphericity, Moran's I, Geary's C
    if feature in _INTENSITY_FEATURES:
        return INTENSITY_UNITS[intensity_unit]
    if feature in _SQUARED_FEATURES:
        code, meaning = INTENSITY_UNITS[intensity_unit]
        return (f"({code})2", f"({meaning})^2")
    if feature.split("_")[0] in ("ih", "cm", "rlm", "szm", "dzm", "ngt", "ngl") or feature.startswith("ivh_v"):
        return _UNITY
    return None  # no unit rule (e.g. integrated intensity, energy, IVH intensities): not written


def ibsi_measurements(features, *, intensity_unit: str = "HU", columns=None) -> dict:
    """IBSI features (one row of :func:`medlab.features.extract`) as measurements for
    :func:`write_sr`: each coded by its IBSI identifier (coding scheme ``IBSI``; a texture
    feature's aggregation, e.g. ``3D, merged`` = ``IAZD``, as its measurement method) with a
    UCUM unit.

    Units: morphology in mm, mm2, mm3 (``/mm`` for the surface to volume ratio) or none;
    intensity statistics and local intensity peaks in ``intensity_unit`` (variance: its
    square); histogram, intensity-volume fractions and texture features (computed on
    discretised grey levels) without a unit (UCUM ``1``). Features with no such rule
    (integrated intensity, energy, IVH intensities) are left out unless named in ``columns``,
    which then raises.

    Parameters
    ----------
    features : pandas.DataFrame (one row), pandas.Series or dict
        Column name -> value, as :func:`medlab.features.extract` names them.
    intensity_unit : {'HU', 'SUV', 'arbitrary'}
        The image's intensity unit.
    columns : list of str, optional
        Only these features (default: every column with an IBSI identifier and a unit).

    Returns
    -------
    dict
        ``{"ibsi:<column>": (value, (UCUM code, meaning))}``, to put into one segment's entry of
        ``measurements`` for :func:`write_sr`; :func:`read_sr` names them the same way.
    """
    import pandas as pd


    intensity_unit = check_choice("intensity_unit", intensity_unit, tuple(INTENSITY_UNITS))
    if isinstance(features, pd.DataFrame):
        if len(features) != 1:
            raise ValueError(f"`features` must be one row of medlab.features.extract; got {len(features)} rows")
        features = features.iloc[0]
    values = dict(features)
    catalogue = _ibsi_catalogue()
    chosen = list(values) if columns is None else list(columns)
    out = {}
    for column in chosen:
        if column not in values:
            raise ValueError(f"`columns`: {column!r} is not in `features`")
        if column not in catalogue:
            if columns is not None:
                raise ValueError(f"`columns`: {column!r} has no IBSI identifier")
            continue
        feature = column
        agg = catalogue[column][2]
        if agg:
            feature = column[: -len(agg) - 1]
        unit = _ibsi_unit(column, feature, intensity_unit)
        if unit is None:
            if columns is not None:
                raise ValueError(f"`columns`: {column!r} has no unit rule for the SR")
            continue
        value = float(values[column])
        if value != value:  # NaN: not computed for this ROI
            continue
        out[f"ibsi:{column}"] = (value, unit)
    return out


def _concept_of(name: str, value):
    """(concept, derivation or None, method or None, unit, value) of one measurement."""
    if name.startswith("ibsi:"):
        column = name[5:]
        catalogue = _ibsi_catalogue()
        if column not in catalogue:
            raise ValueError(f"`measurements`: {name!r} is not an IBSI feature column of medlab.features")
        if not (isinstance(value, tuple) and len(value) == 2):
            raise ValueError(f"`measurements`: {name!r} needs (value, (UCUM code, meaning)); "
                             "medlab.pacs.ibsi_measurements gives them")
        code, title, agg = catalogue[column]
        method = (IBSI_AGGREGATIONS[agg][0], IBSI_SCHEME, IBSI_AGGREGATIONS[agg][1]) if agg else None
        return (code, IBSI_SCHEME, title), None, method, tuple(value[1]), float(value[0])
    if name not in MEASUREMENTS:
        import difflib

        close = difflib.get_close_matches(name, list(MEASUREMENTS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"`measurements`: unknown measurement {name!r}{hint}")
    concept, derivation, unit = MEASUREMENTS[name]
    return concept, derivation, None, unit, float(value)


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
        ``mtv_ml``, ``tlg_g``, ``head_circumference_mm``, ...), each with its concept,
        derivation and UCUM unit; or ``"ibsi:<column>"`` with ``(value, unit)`` for IBSI
        features (:func:`ibsi_measurements`). Values are stored as DICOM decimal strings
        (16 characters).
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
            concept, derivation, method, unit, value = _concept_of(name, value)
            if not np.isfinite(value):
                raise ValueError(f"`measurements`: {name} of segment {number} is {value}")
            items.append(hd.sr.Measurement(
                name=_code(concept), value=value, unit=_code((unit[0], "UCUM", unit[1])),
                derivation=_code(derivation) if derivation else None,
                method=_code(method) if method else None))
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
        (the referenced segment), ``name`` (the :data:`MEASUREMENTS` key, ``"ibsi:<column>"``
        for an IBSI feature, or None for a measurement it does not know), ``concept`` (code
        meaning), ``concept_code`` (``"value (scheme)"``, e.g. ``"RNU0 (IBSI)"``),
        ``derivation``, ``method`` (code meanings), ``value`` (float) and ``unit`` (UCUM code).
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
            derivation = method = None
            for mod in item.get("ContentSequence", []):
                code = _name(mod)[:2]
                if code in (("121401", "DCM"), ("370129005", "SCT")):  # Derivation, Measurement Method
                    c = mod.ConceptCodeSequence[0]
                    coded = (str(c.CodeValue), str(c.CodingSchemeDesignator), str(c.CodeMeaning))
                    if code[0] == "121401":
                        derivation = coded
                    else:
                        method = coded
            concept = _name(item)
            if concept[1] == IBSI_SCHEME:
                name = _ibsi_names().get((concept[0], method[0] if method else ""))
            else:
                name = _BY_CODE.get((concept[:2], derivation[:2] if derivation else None, str(unit.CodeValue)))
            rows.append({"tracking_id": tracking, "seg_sop_uid": seg_uid, "segment_number": seg_number,
                         "name": name, "concept": concept[2], "concept_code": f"{concept[0]} ({concept[1]})",
                         "derivation": derivation[2] if derivation else None,
                         "method": method[2] if method else None,
                         "value": float(mv.NumericValue), "unit": str(unit.CodeValue)})
    return pd.DataFrame(rows, columns=["tracking_id", "seg_sop_uid", "segment_number", "name", "concept",
                                       "concept_code", "derivation", "method", "value", "unit"])


def _ibsi_names() -> dict:
    """(IBSI feature code, aggregation code or '') -> ``"ibsi:<column>"``."""
    return {(code, IBSI_AGGREGATIONS[agg][0] if agg else ""): f"ibsi:{column}"
            for column, (code, _, agg) in _ibsi_catalogue().items()}
