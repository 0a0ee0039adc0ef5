"""The table behind each report: the page shows it under the plot and the CSV export writes
it, so both say the same thing."""


def report_table(name: str, data: dict) -> tuple[list[str], list[list]]:
    if name == "conversations":
        return ["day", "opened", "resolved"], [
            [d["day"], d["opened"], d["resolved"]] for d in data["days"]
        ]
    if name in ("first_response", "resolution"):
        rows = [
            [
                b["label"],
                b["from_seconds"],
                b["to_seconds"] if b["to_seconds"] is not None else "",
                b["count"],
            ]
            for b in data["histogram"]
        ]
        rows.append(["median (seconds)", _blank(data["median_seconds"]), "", data["count"]])
        rows.append(["p90 (seconds)", _blank(data["p90_seconds"]), "", data["count"]])
        return ["bin", "from_seconds", "to_seconds", "conversations"], rows
    if name == "messages":
        return ["channel_id", "channel", "kind", "in", "out"], [
            [c["channel_id"], c["channel"], c["kind"], c["in"], c["out"]] for c in data["channels"]
        ]
    if name == "managers":
        return [
            "user_id",
            "manager",
            "assigned",
            "resolved",
            "first_responses",
            "median_first_response_seconds",
        ], [
            [
                m["user_id"],
                m["name"],
                m["assigned"],
                m["resolved"],
                m["first_responses"],
                _blank(m["median_first_response_seconds"]),
            ]
            for m in data["managers"]
        ]
    if name == "busiest_hours":
        return ["weekday", *[f"{h:02d}:00" for h in data["hours"]]], [
            [weekday, *line]
            for weekday, line in zip(data["weekdays"], data["inbound"], strict=True)
        ]
    raise KeyError(name)


def _blank(value):
    return "" if value is None else value
