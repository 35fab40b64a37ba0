"""The bundled default model (installed as the data package `vidpipe.models`; see pyproject.toml)."""
