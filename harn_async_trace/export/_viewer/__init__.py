"""The HTML viewer's page assets and its data layer (internal; see ``export.html``)."""
