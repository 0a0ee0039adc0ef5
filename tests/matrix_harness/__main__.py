"""Run Synapse + the WhatsApp bridge emulator by hand, for demos.

    .venv/bin/python -m tests.matrix_harness [--port 8008] [--user demo --password demo-pass]

Prints the homeserver URL, the demo CRM user's credentials, the appservice tokens and the
registration path, creates one portal with a customer message, and runs until Ctrl-C.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from .bridge_emulator import BridgeEmulator
from .synapse import SynapseServer


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m tests.matrix_harness",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--server-name", default="switchboard.test")
    p.add_argument("--port", type=int, default=None, help="Synapse port (default: a free one)")
    p.add_argument("--user", default="demo")
    p.add_argument("--password", default="demo-password")
    p.add_argument("--customer", default="15551234567", help="customer phone digits")
    p.add_argument("--customer-name", default="Alice Customer")
    p.add_argument(
        "--real-qr-timing",
        action="store_true",
        help="QR refresh after 60 s, then every 20 s, 5 times (like the real bridge)",
    )
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)

    timing = (
        {"qr_first_refresh_seconds": 60, "qr_refresh_seconds": 20, "qr_refreshes": 5}
        if args.real_qr_timing
        else {"qr_first_refresh_seconds": 20, "qr_refresh_seconds": 20, "qr_refreshes": 5}
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    bridge = BridgeEmulator(args.server_name, **timing)
    hs = SynapseServer(
        args.server_name, app_service_config_files=[bridge.registration_path], port=args.port
    )
    try:
        bridge.start()
        print("starting Synapse...", flush=True)
        hs.start()
        bridge.connect(hs.base_url)
        user = hs.register_user(args.user, args.password)
        room = bridge.create_portal(user["user_id"], args.customer, name=args.customer_name)
        bridge.send_text(room, args.customer, "Hello! Is my order on its way?")
        print(
            f"""
Homeserver URL:      {hs.base_url}
Server name:         {hs.server_name}
CRM user:            {user["user_id"]}
  password:          {args.password}
  access token:      {user["access_token"]}
  device id:         {user["device_id"]}
Bridge bot:          {bridge.bot_mxid}
Appservice URL:      {bridge.url}
  as_token:          {bridge.as_token}
  hs_token:          {bridge.hs_token}
  registration:      {bridge.registration_path}
Synapse data dir:    {hs.data_dir}  (log: {hs.log_path})
Portal room:         {room}  (customer ghost {bridge.ghost_mxid(args.customer)})

Invite {bridge.bot_mxid} to a room and say "login qr" to try the login dialogue;
messages you send in the portal are logged below as "delivered to WhatsApp".
Type on stdin:  scan <phone>   finish a login in progress ("Successfully logged in as ...")
                say <text>     the customer sends <text> into the portal
Ctrl-C to stop.
""",
            flush=True,
        )

        def console() -> None:
            for line in sys.stdin:
                cmd, _, rest = line.strip().partition(" ")
                try:
                    if cmd == "scan" and rest:
                        bridge.complete_login(rest)
                    elif cmd == "say" and rest:
                        bridge.send_text(room, args.customer, rest)
                    elif cmd:
                        print("commands: scan <phone> | say <text>", flush=True)
                except Exception as e:  # noqa: BLE001
                    print(f"error: {e}", flush=True)

        threading.Thread(target=console, daemon=True).start()
        seen = 0
        while not stop.is_set():
            try:
                stop.wait(0.5)
            except KeyboardInterrupt:
                break
            with bridge._cond:
                new = bridge.delivered[seen:]
                seen = len(bridge.delivered)
            for d in new:
                body = d["content"].get("body", d["type"])
                print(
                    f"delivered to WhatsApp {d['chat_jid']}: {body!r} ({d['event_id']})", flush=True
                )
    except KeyboardInterrupt:
        pass
    finally:
        print("stopping...", flush=True)
        hs.close()
        bridge.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
