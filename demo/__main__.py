"""`python -m demo [--host H] [--port P] [--issuer URL]`: serve the demo portal."""

from __future__ import annotations

import argparse
import os
import sys

from werkzeug.serving import make_server

from demo.portal import create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("IDP_DEMO_PORT") or 8080))
    parser.add_argument("--issuer", default=None, help="Defaults to IDP_ISSUER.")
    args = parser.parse_args(argv)
    overrides = {"DEMO_BASE_URL": f"http://localhost:{args.port}"}
    if args.issuer:
        overrides["DEMO_ISSUER"] = args.issuer.rstrip("/")
    try:
        app = create_app(overrides)
    except (RuntimeError, ValueError, KeyError) as exc:
        sys.exit(f"demo portal: {exc}")
    server = make_server(args.host, args.port, app, threaded=True)
    print(f"demo portal on {app.config['DEMO_BASE_URL']} "
          f"(identity provider {app.config['DEMO_ISSUER']})", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
