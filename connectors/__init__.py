"""Outside systems: ESP connectors (`connectors.esp`), CDN connectors (`connectors.cdn`), the
registry and the one HTTP error boundary (`connectors.http`)."""
