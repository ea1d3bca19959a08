"""A bare ASGI endpoint for `make bench`: answers 200 to any POST without reading a signature or storing
anything, on the same server (uvicorn, one process, httptools and uvloop) as `erpsync serve`. The intake
benchmark's ratio to it says what verifying and storing cost."""

from __future__ import annotations

import argparse

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def accept(request: Request) -> JSONResponse:
    await request.body()
    return JSONResponse({"ok": True}, status_code=200)


async def healthz(_: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


app = Starlette(routes=[Route("/webhooks/{source}", accept, methods=["POST"]),
                        Route("/healthz", healthz, methods=["GET"])])

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    uvicorn.run(app, host="127.0.0.1", port=parser.parse_args().port, log_level="warning", access_log=False)
