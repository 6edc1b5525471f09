"""What the host gives plugins: host functions (``functions``), ``http_request`` (``http``, with
the URL helpers ``urls`` that manifest URL sources share) and logging (``logs``)."""
