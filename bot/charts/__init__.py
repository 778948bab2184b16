"""Charts attached to replies and served by the dashboard.

`model` holds the pure data (a service's report series, a rendered chart) and the alt text;
`render` draws a series with matplotlib; `optional_render` loads it on the first chart and does
without it when the ``charts`` extra is not installed; `service_chart` is the cached async facade
that cogs and the web app call. Importing this package alone imports no plotting library.
"""
