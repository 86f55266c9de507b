"""HTTP routes, one module per family: about, nodes (metadata/search), data, documents."""
