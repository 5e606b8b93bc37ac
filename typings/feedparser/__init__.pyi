# Minimal typing stub for feedparser 6.0 (the package ships no type information).
# Only what murmur uses is declared; FeedParserDict values are loosely typed on purpose.
from typing import IO, Any

__version__: str

class FeedParserDict(dict[str, Any]):
    def __getattr__(self, name: str) -> Any: ...

def parse(
    url_file_stream_or_string: IO[bytes],
    etag: str | None = None,
    modified: str | None = None,
    agent: str | None = None,
    referrer: str | None = None,
    handlers: list[Any] | None = None,
    request_headers: dict[str, str] | None = None,
    response_headers: dict[str, str] | None = None,
    resolve_relative_uris: bool | None = None,
    sanitize_html: bool | None = None,
) -> FeedParserDict: ...
