"""One module per ESP; `connectors.registry` maps type names to them."""
