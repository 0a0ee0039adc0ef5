"""Proves the harness: a real Synapse plus the mautrix-whatsapp emulator, seen by a nio client."""

from __future__ import annotations

import time

import nio
import pytest
import requests

from .fixtures import CrmUser, MatrixStack, NioSyncer, body_is, body_startswith

pytestmark = pytest.mark.matrix

CUSTOMER = "15551234567"


async def _client(stack: MatrixStack, user: CrmUser) -> nio.AsyncClient:
    client = nio.AsyncClient(stack.base_url, user.user_id)
    resp = await client.login(password=user.password, device_name="pytest")
    assert isinstance(resp, nio.LoginResponse), resp
    return client


async def _joined_portal(
    stack: MatrixStack, user: CrmUser, ghost: str = CUSTOMER, name: str = "Alice"
) -> tuple[nio.AsyncClient, NioSyncer, str]:
    client = await _client(stack, user)
    syncer = NioSyncer(client)
    await syncer.sync_once(0)
    room_id = await stack.bridge.acreate_portal(user.user_id, ghost, name=name)
    await syncer.wait(lambda s: room_id in s.invites, what="portal invite")
    resp = await client.join(room_id)
    assert isinstance(resp, nio.JoinResponse), resp
    return client, syncer, room_id


def test_synapse_starts_and_answers(matrix_stack: MatrixStack) -> None:
    base = matrix_stack.base_url
    assert base.startswith("http://127.0.0.1:")
    assert requests.get(base + "/health", timeout=5).text == "OK"
    versions = requests.get(base + "/_matrix/client/versions", timeout=5).json()
    assert versions["versions"]
    assert matrix_stack.synapse.is_running()


async def test_portal_arrives_in_crm_users_sync(matrix_stack: MatrixStack, crm_user: CrmUser):
    bridge = matrix_stack.bridge
    client = await _client(matrix_stack, crm_user)
    try:
        syncer = NioSyncer(client)
        await syncer.sync_once(0)
        room_id = await bridge.acreate_portal(crm_user.user_id, CUSTOMER, name="Alice Customer")
        ghost = bridge.ghost_mxid(CUSTOMER)
        text_id = await bridge.asend_text(room_id, CUSTOMER, "Hi, I need help with my order")

        invite = await syncer.wait(lambda s: s.invites.get(room_id), what="invite")
        member = next(
            e
            for e in invite
            if e.get("type") == "m.room.member" and e.get("state_key") == crm_user.user_id
        )
        assert member["content"]["membership"] == "invite"
        assert "is_direct" not in member["content"]  # plain invite, like the real bridge
        assert member["sender"] == bridge.bot_mxid

        assert isinstance(await client.join(room_id), nio.JoinResponse)
        evt = await syncer.wait_event(room_id, lambda e: e.get("event_id") == text_id)
        assert evt["sender"] == ghost
        assert evt["content"] == {"msgtype": "m.text", "body": "Hi, I need help with my order"}

        state_key = f"{matrix_stack.server_name}/whatsapp"
        bridge_state = await client.room_get_state_event(room_id, "m.bridge", state_key)
        assert isinstance(bridge_state, nio.RoomGetStateEventResponse), bridge_state
        content = bridge_state.content
        assert content["bridgebot"] == bridge.bot_mxid
        assert content["protocol"]["id"] == "whatsapp"
        assert content["channel"]["id"] == f"{CUSTOMER}@s.whatsapp.net"
        assert content["channel"]["fi.mau.receiver"] == bridge.own_phone
        assert content["com.beeper.room_type"] == "dm"
        half_shot = await client.room_get_state_event(room_id, "uk.half-shot.bridge", state_key)
        assert half_shot.content == content

        # ghost profile: display name and bridge identifiers
        prof = requests.get(
            f"{matrix_stack.base_url}/_matrix/client/v3/profile/{ghost}",
            headers={"Authorization": f"Bearer {client.access_token}"},
            timeout=5,
        ).json()
        assert prof["displayname"] == "Alice Customer (WA)"
        assert prof["com.beeper.bridge.identifiers"] == [f"tel:+{CUSTOMER}"]
        # the ghost is joined
        members = await client.joined_members(room_id)
        assert {m.user_id for m in members.members} >= {ghost, bridge.bot_mxid, crm_user.user_id}
    finally:
        await client.close()


async def test_crm_text_is_relayed_once_with_status(matrix_stack: MatrixStack, crm_user: CrmUser):
    bridge = matrix_stack.bridge
    client, syncer, room_id = await _joined_portal(matrix_stack, crm_user)
    try:
        content = {"msgtype": "m.text", "body": "Your order ships tomorrow"}
        r1 = await client.room_send(room_id, "m.room.message", content, tx_id="msg-42")
        r2 = await client.room_send(room_id, "m.room.message", content, tx_id="msg-42")
        assert isinstance(r1, nio.RoomSendResponse), r1
        assert r1.event_id == r2.event_id

        bridge.wait_for(lambda: bridge.delivered_in(room_id), timeout=10, what="delivery")
        status = await syncer.wait_event(
            room_id,
            lambda e: (
                e.get("type") == "com.beeper.message_send_status"
                and e["content"]["m.relates_to"]["event_id"] == r1.event_id
            ),
            what="send status",
        )
        assert status["sender"] == bridge.bot_mxid
        assert status["content"]["status"] == "SUCCESS"
        assert status["content"]["network"] == "whatsapp"
        assert status["content"]["m.relates_to"]["rel_type"] == "m.reference"

        def bot_read(s: NioSyncer) -> bool:
            for e in s.ephemeral.get(room_id, []):
                for rcpt in getattr(e, "receipts", []):
                    if rcpt.event_id == r1.event_id and rcpt.user_id == bridge.bot_mxid:
                        return True
            return False

        await syncer.wait(bot_read, what="m.read from the bot")
        delivered = bridge.delivered_in(room_id)
        assert len(delivered) == 1
        assert delivered[0]["event_id"] == r1.event_id
        assert delivered[0]["content"]["body"] == "Your order ships tomorrow"
        assert delivered[0]["sender"] == crm_user.user_id

        # the customer reads it on WhatsApp
        await bridge.aread_by_ghost(room_id, r1.event_id)

        def ghost_read(s: NioSyncer) -> bool:
            return any(
                rcpt.event_id == r1.event_id and rcpt.user_id == bridge.ghost_mxid(CUSTOMER)
                for e in s.ephemeral.get(room_id, [])
                for rcpt in getattr(e, "receipts", [])
            )

        await syncer.wait(ghost_read, what="m.read from the ghost")
    finally:
        await client.close()


async def test_failed_sends(matrix_stack: MatrixStack, crm_user: CrmUser):
    bridge = matrix_stack.bridge
    client, syncer, room_id = await _joined_portal(matrix_stack, crm_user)
    try:
        bridge.fail_next_send("FAIL_PERMANENT", reason="recipient not on WhatsApp")
        r = await client.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": "hello?"}, tx_id="perm-1"
        )
        status = await syncer.wait_event(
            room_id,
            lambda e: (
                e.get("type") == "com.beeper.message_send_status"
                and e["content"]["m.relates_to"]["event_id"] == r.event_id
            ),
        )
        assert status["content"]["status"] == "FAIL_PERMANENT"
        assert status["content"]["message"] == "recipient not on WhatsApp"
        notice = await syncer.wait_event(
            room_id,
            body_is(
                "\u26a0\ufe0f Your message was not bridged: recipient not on WhatsApp", "m.notice"
            ),
        )
        assert notice["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] == r.event_id

        bridge.fail_next_send("FAIL_RETRIABLE", reason="timeout")
        r2 = await client.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": "again"}, tx_id="retr-1"
        )
        status = await syncer.wait_event(
            room_id,
            lambda e: (
                e.get("type") == "com.beeper.message_send_status"
                and e["content"]["m.relates_to"]["event_id"] == r2.event_id
            ),
        )
        assert status["content"]["status"] == "FAIL_RETRIABLE"
        assert not bridge.delivered_in(room_id)
        assert [f["event_id"] for f in bridge.failed if f["room_id"] == room_id] == [
            r.event_id,
            r2.event_id,
        ]
    finally:
        await client.close()


async def test_ghost_media_edits_reactions_replies(matrix_stack: MatrixStack, crm_user: CrmUser):
    bridge = matrix_stack.bridge
    lid = "lid-123456789012345"
    client, syncer, room_id = await _joined_portal(matrix_stack, crm_user, ghost=lid, name="Bob")
    try:
        ghost = bridge.ghost_mxid(lid)
        assert ghost == f"@whatsapp_lid-123456789012345:{matrix_stack.server_name}"
        ts = int(time.time() * 1000) - 3_600_000
        text = await bridge.asend_text(room_id, lid, "an hour ago", ts=ts)
        image = bridge.send_image(room_id, lid, caption="look")
        voice = bridge.send_voice(room_id, lid)
        sticker = bridge.send_sticker(room_id, lid)
        loc = await bridge.asend_location(room_id, lid, 52.37, 4.89, "Amsterdam")
        edit = await bridge.asend_edit(room_id, lid, text, "an hour ago (edited)")
        react = await bridge.asend_reaction(room_id, lid, text, "\U0001f44d")
        reply = await bridge.asend_text(room_id, lid, "see above", reply_to=text)
        redaction = await bridge.aredact(room_id, lid, reply)
        own = await bridge.asend_own_text(room_id, "sent from my phone")

        await syncer.wait(
            lambda s: s.find(room_id, lambda e: e.get("event_id") == own), what="all events"
        )
        by_id = {e["event_id"]: e for e in syncer.timeline[room_id]}
        assert by_id[text]["origin_server_ts"] == ts
        img = by_id[image]["content"]
        assert img["msgtype"] == "m.image" and img["url"].startswith("mxc://")
        assert img["info"]["mimetype"] == "image/png" and img["info"]["w"] == 64
        dl = await client.download(mxc=img["url"])
        assert isinstance(dl, nio.DownloadResponse), dl
        assert dl.body.startswith(b"\x89PNG") and len(dl.body) == img["info"]["size"]
        vc = by_id[voice]["content"]
        assert vc["msgtype"] == "m.audio" and "org.matrix.msc3245.voice" in vc
        assert vc["info"]["duration"] == 4000
        assert by_id[sticker]["type"] == "m.sticker"
        assert by_id[loc]["content"]["geo_uri"] == "geo:52.37,4.89"
        ed = by_id[edit]["content"]
        assert ed["m.relates_to"] == {"rel_type": "m.replace", "event_id": text}
        assert ed["m.new_content"]["body"] == "an hour ago (edited)"
        assert by_id[react]["content"]["m.relates_to"]["key"] == "\U0001f44d"
        assert by_id[redaction]["type"] == "m.room.redaction"
        assert by_id[redaction].get("redacts", by_id[redaction]["content"].get("redacts")) == reply
        assert by_id[own]["sender"] == bridge.ghost_mxid(bridge.own_phone)
        # the bridge does not relay its own ghosts' messages back
        assert not bridge.delivered_in(room_id)
        assert bridge.events_seen  # Synapse pushed events to the appservice
    finally:
        await client.close()


async def test_login_qr_dialogue(matrix_stack: MatrixStack, crm_user: CrmUser):
    bridge = matrix_stack.bridge
    client = await _client(matrix_stack, crm_user)
    try:
        syncer = NioSyncer(client)
        await syncer.sync_once(0)
        resp = await client.room_create(invite=[bridge.bot_mxid], is_direct=True)
        assert isinstance(resp, nio.RoomCreateResponse), resp
        room = resp.room_id
        await syncer.wait_event(
            room,
            lambda e: (
                e.get("sender") == bridge.bot_mxid
                and e.get("content", {}).get("msgtype") == "m.notice"
            ),
            what="hello",
        )
        await client.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "login qr"})
        await syncer.wait_event(
            room, body_is("Scan the QR code with the WhatsApp mobile app to log in", "m.notice")
        )
        image = await syncer.wait_event(
            room,
            lambda e: (
                e.get("content", {}).get("msgtype") == "m.image"
                and "m.relates_to" not in e["content"]
            ),
            what="QR image",
        )
        c = image["content"]
        assert c["body"].startswith("2@")
        assert c["info"]["mimetype"] == "image/png" and c["info"]["w"] == 512
        png = await client.download(mxc=c["url"])
        assert png.body.startswith(b"\x89PNG")
        assert png.body[16:24] == (512).to_bytes(4, "big") * 2
        edit = await syncer.wait_event(
            room,
            lambda e: (
                e.get("content", {}).get("m.relates_to", {}).get("rel_type") == "m.replace"
                and e["content"]["m.relates_to"]["event_id"] == image["event_id"]
            ),
            what="QR edit",
        )
        assert edit["content"]["m.new_content"]["msgtype"] == "m.image"
        assert edit["content"]["m.new_content"]["body"] != c["body"]

        await bridge.acomplete_login("+1 555 000 0042", user_id=crm_user.user_id)
        await syncer.wait_event(room, body_is("Successfully logged in as +15550000042", "m.notice"))
        await syncer.wait_event(
            room,
            lambda e: (
                e.get("type") == "m.room.redaction"
                and (e.get("redacts") or e["content"].get("redacts")) == image["event_id"]
            ),
            what="QR redaction",
        )
        assert bridge.logins[crm_user.user_id] == "15550000042"

        await client.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "list-logins"})
        await syncer.wait_event(room, body_startswith("* `15550000042`"))
        await bridge.asend_bridge_state(
            crm_user.user_id, "BAD_CREDENTIALS", message="You were logged out"
        )
        await syncer.wait_event(
            room, body_startswith("State update for +15550000042: `BAD_CREDENTIALS`")
        )
        # new portals carry the logged-in number as receiver
        portal = await bridge.acreate_portal(crm_user.user_id, "15559990000")
        assert bridge.portals[portal].receiver == "15550000042"
    finally:
        await client.close()


async def test_login_qr_times_out(crm_user: CrmUser, matrix_stack: MatrixStack):
    bridge = matrix_stack.bridge
    old = (bridge.qr_first_refresh_seconds, bridge.qr_refresh_seconds, bridge.qr_refreshes)
    bridge.qr_first_refresh_seconds, bridge.qr_refresh_seconds, bridge.qr_refreshes = 0.2, 0.2, 2
    client = await _client(matrix_stack, crm_user)
    try:
        syncer = NioSyncer(client)
        room = await bridge.aensure_management_room(crm_user.user_id)
        await syncer.wait(lambda s: room in s.invites, what="management invite")
        await client.join(room)
        await client.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "login qr"})
        await syncer.wait_event(room, body_startswith("Login failed:"), what="timeout notice")
        edits = [
            e
            for e in syncer.events(room, "m.room.message")
            if e["content"].get("m.relates_to", {}).get("rel_type") == "m.replace"
        ]
        assert len(edits) == 2
        assert crm_user.user_id not in bridge.logins
    finally:
        bridge.qr_first_refresh_seconds, bridge.qr_refresh_seconds, bridge.qr_refreshes = old
        await client.close()


async def test_bridge_down_then_synapse_retries(matrix_stack: MatrixStack, crm_user: CrmUser):
    bridge = matrix_stack.bridge
    client, syncer, room_id = await _joined_portal(matrix_stack, crm_user)
    try:
        bridge.set_down(True)
        before = bridge.down_requests
        r = await client.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": "while down"}, tx_id="down-1"
        )
        bridge.wait_for(lambda: bridge.down_requests > before, timeout=10, what="503 answered")
        assert not bridge.delivered_in(room_id)
        bridge.set_down(False)
        await bridge.aping()  # makes Synapse retry its queued transactions now
        bridge.wait_for(lambda: bridge.delivered_in(room_id), timeout=15, what="redelivery")
        assert [d["event_id"] for d in bridge.delivered_in(room_id)] == [r.event_id]
    finally:
        bridge.set_down(False)
        await client.close()


async def test_synapse_restart_keeps_rooms_and_messages(
    matrix_stack: MatrixStack, crm_user: CrmUser
):
    bridge, hs = matrix_stack.bridge, matrix_stack.synapse
    client, syncer, room_id = await _joined_portal(matrix_stack, crm_user)
    try:
        before = await bridge.asend_text(room_id, CUSTOMER, "before restart")
        await syncer.wait_event(room_id, lambda e: e.get("event_id") == before)
        port = hs.port
        hs.stop()
        assert not hs.is_running()
        with pytest.raises(requests.ConnectionError):
            requests.get(hs.base_url + "/health", timeout=2)
        hs.start()
        assert hs.port == port
        after = await bridge.asend_text(room_id, CUSTOMER, "after restart")
        await syncer.wait_event(room_id, lambda e: e.get("event_id") == after)
        msgs = await client.room_messages(
            room_id, start=syncer.next_batch, direction=nio.MessageDirection.back, limit=50
        )
        assert isinstance(msgs, nio.RoomMessagesResponse), msgs
        bodies = [
            e.source["content"].get("body")
            for e in msgs.chunk
            if e.source.get("type") == "m.room.message"
        ]
        assert "before restart" in bodies and "after restart" in bodies
        # the CRM user's login survived too
        r = await client.room_send(
            room_id,
            "m.room.message",
            {"msgtype": "m.text", "body": "still here"},
            tx_id="post-restart",
        )
        assert isinstance(r, nio.RoomSendResponse), r
        bridge.wait_for(
            lambda: any(d["event_id"] == r.event_id for d in bridge.delivered_in(room_id)),
            timeout=15,
        )
    finally:
        await client.close()


def test_provisioning_api_qr_login(matrix_stack: MatrixStack, crm_user: CrmUser) -> None:
    bridge = matrix_stack.bridge
    base = bridge.provisioning_url + "/v3"
    auth = {"Authorization": f"Bearer {bridge.provisioning_secret}"}
    q = {"user_id": crm_user.user_id}
    r = requests.get(
        base + "/login/flows", headers={"Authorization": "Bearer nope"}, params=q, timeout=5
    )
    assert r.status_code == 401
    flows = requests.get(base + "/login/flows", headers=auth, params=q, timeout=5).json()
    assert "qr" in [f["id"] for f in flows["flows"]]
    step = requests.post(base + "/login/start/qr", headers=auth, params=q, timeout=5).json()
    assert step["type"] == "display_and_wait"
    assert step["display_and_wait"]["type"] == "qr"
    first_qr = step["display_and_wait"]["data"]
    # waiting on the step returns the refreshed QR...
    url = f"{base}/login/step/{step['login_id']}/{step['step_id']}/display_and_wait"
    nxt = requests.post(url, headers=auth, params=q, json={}, timeout=30).json()
    assert nxt["type"] == "display_and_wait" and nxt["display_and_wait"]["data"] != first_qr
    # ...or the completion, once the phone scanned it
    bridge.complete_login("15550000077", user_id=crm_user.user_id)
    done = requests.post(url, headers=auth, params=q, json={}, timeout=30).json()
    assert done["type"] == "complete"
    assert done["complete"]["user_login_id"] == "15550000077"
    logins = requests.get(base + "/logins", headers=auth, params=q, timeout=5).json()
    assert logins["login_ids"] == ["15550000077"]
    dm = requests.post(base + "/create_dm/+15551112222", headers=auth, params=q, timeout=30).json()
    assert dm["dm_room_mxid"] in bridge.portals
    assert bridge.portals[dm["dm_room_mxid"]].receiver == "15550000077"
    res = requests.get(
        base + "/resolve_identifier/+15551112222", headers=auth, params=q, timeout=5
    ).json()
    assert res["dm_room_mxid"] == dm["dm_room_mxid"]
    assert (
        requests.post(base + "/logout/15550000077", headers=auth, params=q, timeout=5).status_code
        == 200
    )
