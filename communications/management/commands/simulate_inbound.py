"""Simulated customers writing in through the real ingest path, at a steady rate.

    manage.py simulate_inbound --channel whatsapp --rate 50 --seconds 30
    manage.py simulate_inbound --channel 3 --rate 200 --seconds 10 --conversations 500 \
        --media --duplicates 0.1

Every delivery is an `InboundMessage` handed to `ingest_message`, exactly as a provider would:
contacts, conversations, dedup, unread counts and realtime events all happen for real.
`--duplicates` re-delivers that fraction of the deliveries (same provider message id), which
the ingest path must recognise: they are counted as duplicates, never stored twice.
"""

import random
import struct
import time
import uuid
import zlib

from django.core.management.base import BaseCommand, CommandError

from communications.models import Channel, Message
from communications.services.ingest import (
    InboundAttachment,
    InboundMessage,
    InboundSender,
    ingest_message,
)
from crm.sample_text import COUNTRIES, CUSTOMER_LINES, FIRST, LAST, PRODUCTS


def tiny_png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A valid one-colour PNG, so media handling sees a real image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


class Command(BaseCommand):
    help = "Simulate customers writing in through the real ingest path at a steady rate."

    def add_arguments(self, parser):
        parser.add_argument("--channel", required=True, help="a channel id or kind")
        parser.add_argument("--rate", type=float, default=50.0, help="deliveries per second")
        parser.add_argument("--seconds", type=float, default=30.0)
        parser.add_argument("--conversations", type=int, default=200, help="distinct customers")
        parser.add_argument("--media", action="store_true", help="attach images to ~1 in 8")
        parser.add_argument(
            "--duplicates", type=float, default=0.0, help="fraction of deliveries re-delivered"
        )
        parser.add_argument("--seed", type=int, default=None, help="repeatable text and order")
        parser.add_argument("--run-id", default="", help="prefix of the simulated ids")

    def handle(self, *args, **options):
        channel = self._channel(options["channel"])
        rate, seconds = options["rate"], options["seconds"]
        if rate <= 0 or seconds <= 0:
            raise CommandError("--rate and --seconds must be positive")
        if not 0 <= options["duplicates"] < 1:
            raise CommandError("--duplicates is a fraction from 0 up to (not including) 1")
        if options["conversations"] < 1:
            raise CommandError("--conversations must be at least 1")
        rng = random.Random(options["seed"])
        run_id = options["run_id"] or uuid.uuid4().hex[:8]
        customers = self._customers(rng, run_id, options["conversations"])
        deliveries = max(1, round(rate * seconds))
        redeliveries = round(deliveries * options["duplicates"])
        # Which delivery slots re-deliver an earlier message (never the first one).
        repeat_slots = set(rng.sample(range(1, deliveries), min(redeliveries, deliveries - 1)))

        sent = stored = duplicates = 0
        delivered: list[InboundMessage] = []
        started = time.monotonic()
        for slot in range(deliveries):
            delay = started + slot / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if slot in repeat_slots:
                item = rng.choice(delivered)
            else:
                item = self._message(rng, run_id, len(delivered), customers, options["media"])
                delivered.append(item)
            result = ingest_message(channel, item)
            sent += 1
            if result.created:
                stored += 1
            else:
                duplicates += 1
        elapsed = max(time.monotonic() - started, 1e-9)
        self.stdout.write(
            f"simulate_inbound: channel {channel.pk} ({channel.kind}) run {run_id}: "
            f"sent {sent} ({len(delivered)} unique, {len(repeat_slots)} re-delivered), "
            f"stored {stored}, duplicates {duplicates}, "
            f"{sent / elapsed:.1f} msg/s achieved (target {rate:g}) in {elapsed:.1f} s"
        )

    def _channel(self, value: str) -> Channel:
        if value.isdigit():
            channel = Channel.objects.filter(pk=int(value)).first()
        else:
            channel = Channel.objects.filter(kind=value, is_active=True).order_by("pk").first()
        if channel is None:
            known = ", ".join(f"{c.pk}={c.kind}" for c in Channel.objects.order_by("pk")) or "none"
            raise CommandError(f"no channel '{value}' (channels: {known})")
        return channel

    def _customers(self, rng: random.Random, run_id: str, count: int) -> list[InboundSender]:
        return [
            InboundSender(
                external_id=f"sim-{run_id}-{index}",
                name=f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                phone=f"+4917{rng.randrange(10**8):08d}",
            )
            for index in range(count)
        ]

    def _message(
        self,
        rng: random.Random,
        run_id: str,
        index: int,
        customers: list[InboundSender],
        media: bool,
    ) -> InboundMessage:
        # A few customers write most of the messages, as in real inboxes.
        sender = customers[min(int(rng.paretovariate(1.2)) - 1, len(customers) - 1)]
        if rng.random() < 0.5:
            sender = rng.choice(customers)
        text = rng.choice(CUSTOMER_LINES).format(
            order=f"SB-{rng.randint(10000, 99999)}",
            product=rng.choice(PRODUCTS),
            country=rng.choice(COUNTRIES),
        )
        attachments = ()
        kind = Message.Kind.TEXT
        if media and rng.random() < 1 / 8:
            kind = Message.Kind.IMAGE
            size = rng.choice((16, 32, 48))
            colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
            attachments = (
                InboundAttachment(
                    mime_type="image/png",
                    filename=f"photo-{index}.png",
                    data=tiny_png(size, size, colour),
                    width=size,
                    height=size,
                ),
            )
        return InboundMessage(
            sender=sender,
            content=text,
            kind=kind,
            external_id=f"sim-{run_id}-m{index}",
            attachments=attachments,
        )
