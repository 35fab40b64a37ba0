"""vidpipe's preset pipelines (installed as the data package `vidpipe.pipelines`; see pyproject.toml)."""
