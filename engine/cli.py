"""The ``raylign`` command: run, plugins, verify, serve, data check, view, plan, doctor, chat.

Each subcommand lives in its own module; this one only parses arguments and turns a ``RaylignError`` into a
clear message and a non-zero exit.
"""
from __future__ import annotations

import argparse
import os
import sys

from raylign.engine.errors import RaylignError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="raylign", description="A plugin-based RL alignment engine on Ray.")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the stages a config declares")
    run.add_argument("config", help="a TOML config (see examples/)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                     help="override a config value (repeatable)")
    run.add_argument("--resume", action="store_true", help="continue an interrupted run from its checkpoints")
    run.add_argument("--address", default=None, help="join this Ray cluster (default: $RAY_ADDRESS or local)")

    sub.add_parser("plugins", help="list registered stages, verifiers and reward providers")

    ver = sub.add_parser("verify", help="score a JSONL file with a verifier")
    ver.add_argument("name", help="verifier name (see `raylign plugins`)")
    ver.add_argument("--input", required=True, help="JSONL input, one task per line")
    ver.add_argument("--output", default=None, help="JSONL output (default: stdout)")
    ver.add_argument("--workers", type=int, default=0, help="parallel workers (default: CPU count)")
    ver.add_argument("--timeout", type=float, default=10.0, help="hard deadline per verification, seconds")

    srv = sub.add_parser("serve", help="serve raylign components over HTTP")
    srv.add_argument("what", choices=["verifiers"], help="what to serve")
    srv.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    srv.add_argument("--port", type=int, default=8000)
    srv.add_argument("--workers", type=int, default=2, help="verifier worker processes per replica")
    srv.add_argument("--timeout", type=float, default=10.0, help="hard deadline per verification, seconds")
    srv.add_argument("--token", default=None,
                     help="require 'Authorization: Bearer TOKEN' on every endpoint but GET /health (default: "
                          "$RAYLIGN_SERVE_TOKEN; prefer it: a command line is visible to other local users)")
    srv.add_argument("--max-body-mb", type=float, default=8.0, help="refuse larger request bodies (413), MiB")
    srv.add_argument("--max-items", type=int, default=1024, help="refuse requests with more items (413)")

    data = sub.add_parser("data", help="check a config's task data before training")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    check = data_sub.add_parser("check", help="render the first prompts, score rows with their own references, "
                                              "measure the starting model's solve rates")
    check.add_argument("config", help="a TOML config with a grpo/ppo stage")
    check.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                       help="override a config value (repeatable)")
    check.add_argument("--stage", default=None, help="check only this stage (default: every stage asking prompts)")
    check.add_argument("--show", type=int, default=3, help="rendered prompts to print per stage")
    check.add_argument("--model", default=None, help="the model to render with and measure (default: the stage's "
                                                      "starting model, when it exists)")
    check.add_argument("--no-model", action="store_true", help="skip the starting model's solve rates")

    view = sub.add_parser("view", help="a local web page over a run directory (curves, rollouts), live")
    view.add_argument("run", help="a run directory (or a run name under runs/)")
    view.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (0 = any free one)")

    plan = sub.add_parser("plan", help="placement, batch arithmetic and memory per role, without starting actors")
    plan.add_argument("config", help="a TOML config (see examples/)")
    plan.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                      help="override a config value (repeatable)")
    plan.add_argument("--address", default=None, help="plan on this Ray cluster (default: [ray] address, "
                                                      "$RAY_ADDRESS, else the local Ray [ray] describes)")

    doctor = sub.add_parser("doctor", help="check the environment; exit code 0 when a run can start")
    doctor.add_argument("--address", default=None, help="check this Ray cluster (default: $RAY_ADDRESS, else local)")

    chat = sub.add_parser("chat", help="talk to a model directory")
    chat.add_argument("model_dir")
    chat.add_argument("--max-tokens", type=int, default=128)
    chat.add_argument("--temperature", type=float, default=0.0)
    chat.add_argument("--system", default=None, help="an optional system message")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        if args.command == "run":
            from raylign.engine.driver import run_command
            return run_command(args)
        if args.command == "plugins":
            from raylign.engine.listing import plugins_command
            return plugins_command(args)
        if args.command == "verify":
            from raylign.engine.rewards.verify_cmd import verify_command
            return verify_command(args)
        if args.command == "serve":
            from raylign.engine.rewards.serve import serve_command
            return serve_command(args)
        if args.command == "data":
            from raylign.engine.tasks.data_check import data_check_command
            return data_check_command(args)
        if args.command == "view":
            from raylign.engine.view.server import view_command
            return view_command(args)
        if args.command == "plan":
            from raylign.engine.plan import plan_command
            return plan_command(args)
        if args.command == "doctor":
            from raylign.engine.doctor import doctor_command
            return doctor_command(args)
        if args.command == "chat":
            from raylign.engine.chat import chat_command
            return chat_command(args)
    except RaylignError as exc:
        print(f"raylign: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("raylign: interrupted", file=sys.stderr)
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main())
