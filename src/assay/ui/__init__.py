"""The web dashboard: server-rendered pages (Jinja2, htmx) over the workspace's services.

Every asset ships in the package (`static/vendor/`: htmx and uPlot, copied from the
npm registry by `scripts/vendor-ui.sh`); nothing loads from the internet.
"""
