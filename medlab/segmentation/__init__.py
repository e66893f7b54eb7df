"""Classic segmentation: thresholds, region growing, edge-based methods, morphology, label statistics."""
