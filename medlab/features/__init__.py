"""IBSI-conformant radiomics features; filled by the features issue."""
