"""A JSON document as the type checker sees it."""

JsonValue = str | int | float | bool | None | list["JsonValue"] | dict[str, "JsonValue"]
