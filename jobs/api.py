"""Job: ``mmm api`` (the recommendation service: FastAPI under uvicorn, on 127.0.0.1 by default).

FastAPI, uvicorn and the model library are imported only when the command runs, so ``mmm --help``
stays fast.
"""

from __future__ import annotations

import argparse
import sys

from jobs.options import add_platform

DEFAULT_PORT = 8000


def add_arguments(commands: argparse._SubParsersAction) -> None:
    api = commands.add_parser("api", help="serve recommendations, optimize and what-if over HTTP (OpenAPI at /docs)")
    add_platform(api)
    api.add_argument("--lake", default=None, help="Delta tables root (default: the platform config's)")
    api.add_argument(
        "--host", default="127.0.0.1", help="address to listen on; beyond loopback only with an API token set"
    )
    api.add_argument("--port", type=int, default=DEFAULT_PORT)
    api.add_argument(
        "--token-file", default=None, help="file of bearer tokens, one a line (or MMM_API_TOKENS / MMM_API_TOKEN_FILE)"
    )
    api.add_argument(
        "--alias-ttl", type=float, default=10.0, help="seconds a registry alias is trusted before it is looked up again"
    )
    api.add_argument("--no-warm", action="store_true", help="do not load and compile the champions at start")


def serve(args: argparse.Namespace) -> int:
    """Serve until interrupted; exit 1 on a bad config, a bad token file or an unsafe bind (before listening)."""
    import uvicorn

    from pipelines.config import ConfigError, PlatformConfig
    from serving.app import create_app
    from serving.auth import UnsafeBindError, check_bind, load_tokens
    from serving.service import RecommendationService

    try:
        platform = PlatformConfig.from_yaml(args.platform, project=args.project)
        tokens = load_tokens(token_file=args.token_file)
        check_bind(args.host, tokens)
    except (ConfigError, UnsafeBindError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    service = RecommendationService.from_platform(platform, args.lake, alias_ttl_s=args.alias_ttl)
    auth = f"{len(tokens)} bearer token(s)" if tokens else "no token (loopback only)"
    print(f"mmm api on http://{args.host}:{args.port} (docs at /docs), lake {service.lake.root}, {auth}", flush=True)
    uvicorn.run(create_app(service, tokens, warm=not args.no_warm), host=args.host, port=args.port, log_level="info")
    return 0
