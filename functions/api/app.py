"""The HTTP API and web app: FastAPI behind Mangum."""

from mangum import Mangum

from lightbox.web.app import create_app

app = create_app()
handler = Mangum(app, lifespan="off")
