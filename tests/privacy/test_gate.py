from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from murmur.privacy import PrivacyGate, Pseudonymizer
from murmur.query import matches, parse
from murmur.types import Draft

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def draft(**kw: object) -> Draft:
    base: dict[str, object] = {
        "platform": "mastodon",
        "post_id": "https://mastodon.social/users/alice/statuses/1",
        "created_at": datetime(2026, 11, 23, 11, tzinfo=UTC),
        "text": "hello @alice@mastodon.social, mail me: alice@example.org https://example.com/secret/path",
        "author_raw_id": "alice@mastodon.social",
    }
    base.update(kw)
    return Draft(**base)  # type: ignore[arg-type]


def test_gate_pseudonymizes_redacts_and_drops_paths(tmp_path: Path) -> None:
    gate = PrivacyGate(key_file=tmp_path / "keys", period_days=30)
    post = gate.apply(
        draft(urls=["https://www.example.com/secret/path", "https://news.site.org/a/b"], mentions=["alice"]),
        now=NOW,
    )
    assert post.text == "hello @user, mail me: <EMAIL> example.com"
    assert post.author_key != "alice@mastodon.social"
    assert len(post.author_key) == 16
    assert post.domains == ["example.com", "news.site.org"]
    assert post.has_link
    assert post.mentions == []
    assert post.redactions == 2
    assert "secret" not in repr(post)
    assert "alice" not in repr(post)


def test_public_accounts_stay_readable(tmp_path: Path) -> None:
    gate = PrivacyGate(key_file=None, public_accounts=["@WHO"])
    post = gate.apply(draft(text="thanks @WHO and @bob", mentions=["WHO", "bob"]), now=NOW)
    assert post.text == "thanks @WHO and @user"
    assert post.mentions == ["WHO"]


def test_geo_keeps_only_country_codes() -> None:
    gate = PrivacyGate(key_file=None)
    assert gate.apply(draft(country="de"), now=NOW).country == "DE"
    assert gate.apply(draft(country="Berlin, Germany"), now=NOW).country is None


def test_same_author_same_key_within_period_and_unlinkable_across(tmp_path: Path) -> None:
    keys = Pseudonymizer(tmp_path / "k", period_days=30)
    a = keys.key("bluesky", "did:plc:abc", now=NOW)
    assert a == keys.key("bluesky", "did:plc:abc", now=NOW + timedelta(hours=1))
    assert a != keys.key("mastodon", "did:plc:abc", now=NOW)
    # a second process reading the same key file agrees
    assert Pseudonymizer(tmp_path / "k", period_days=30).key("bluesky", "did:plc:abc", now=NOW) == a
    later = keys.key("bluesky", "did:plc:abc", now=NOW + timedelta(days=31))
    assert later != a
    # the old period's secret is gone from the key file: the old key cannot be recomputed
    assert Pseudonymizer(tmp_path / "k", period_days=30).key("bluesky", "did:plc:abc", now=NOW) != a
    assert (tmp_path / "k").stat().st_mode & 0o777 == 0o600


def test_unreadable_key_file_is_a_clear_error(tmp_path: Path) -> None:
    from murmur.errors import ConfigError

    (tmp_path / "k").write_text("not json")
    with pytest.raises(ConfigError, match="unreadable"):
        Pseudonymizer(tmp_path / "k", period_days=30).key("x", "y", now=NOW)


def test_post_ids_are_keyed_and_deletions_find_them(tmp_path: Path) -> None:
    from murmur.types import Deletion

    gate = PrivacyGate(key_file=tmp_path / "keys", period_days=30)
    post = gate.apply(draft(), now=NOW)
    assert "alice" not in post.post_id
    later = NOW + timedelta(days=90)  # several key rotations later
    again = PrivacyGate(key_file=tmp_path / "keys", period_days=30)
    assert again.delete(Deletion("mastodon", draft().post_id), now=later).post_id == post.post_id


def test_reddit_user_pseudo_subreddits_are_dropped() -> None:
    gate = PrivacyGate(key_file=None)
    assert gate.apply(draft(platform="reddit", community="u_someone"), now=NOW).community is None
    assert gate.apply(draft(platform="reddit", community="AskReddit"), now=NOW).community == "AskReddit"
    # a Pushshift dump imported as a file (platform "file") names the same profiles
    for community in ("u_someone", "U_Someone", "u/someone", "/u/someone"):
        assert gate.apply(draft(platform="file", community=community), now=NOW).community is None
    assert gate.apply(draft(platform="file", community="unitedkingdom"), now=NOW).community == "unitedkingdom"


def test_hashtags_in_scripts_with_vowel_signs_are_kept() -> None:
    # Devanagari, Thai, Tamil and Bengali spell vowels with combining marks, and Arabic may carry
    # harakat: such tags used to fail the gate's check and vanish from the post's hashtags.
    tags = ["बाढ़", "น้ำท่วม", "தமிழ்", "বন্যা", "مُحَمَّد", "Klima", "زلزال_المغرب"]
    post = PrivacyGate(key_file=None).apply(draft(hashtags=[*tags, "not a tag", "a" * 101]), now=NOW)
    assert post.hashtags == [t.lower() for t in tags]


def test_hashtags_written_in_the_text_join_the_platforms() -> None:
    # Reddit, feeds and files list no hashtags: '#tag' in their text is one all the same (query
    # '#tag', hashtag breakdowns); numbers ('#1', 'issue #42') and 'C#' are not tags.
    gate = PrivacyGate(key_file=None)
    text = "Floods again #Klima #बाढ़ #COP30 #1 fan, issue #42, C# rocks https://example.com/a#frag"
    post = gate.apply(draft(platform="reddit", text=text, hashtags=["cop30", "Wetter"]), now=NOW)
    assert post.hashtags == ["cop30", "wetter", "klima", "बाढ़"]


def test_reddit_markdown_headings_and_code_are_no_hashtags() -> None:
    # Real Reddit posts in the demo store gave the hashtags 'note', 'edit' and 'authenticating':
    # old Reddit's headings need no space after the '#', and code comments start with one.
    gate = PrivacyGate(key_file=None)
    text = (
        "#####NOTE: Do not message us\n\nedit: NSFW\n###edit #2: rip inbox\n"
        "    r.set_oauth_app_info(CLIENT_ID)\n    #authenticating\n"
        "```\n# python\n#comment\n```\nrun `#pragma once` then #metoo is still a tag\n#Heading"
    )
    post = gate.apply(draft(platform="reddit", text=text), now=NOW)
    assert post.hashtags == ["metoo"]
    # elsewhere a tag at the start of a line is a tag
    assert gate.apply(draft(text="#Heading\n    #indented"), now=NOW).hashtags == ["heading", "indented"]


def test_a_full_width_number_sign_starts_a_hashtag() -> None:
    # Japanese and Chinese input methods type "＃" (U+FF03); Mastodon and Bluesky read it as "#".
    text = "地震の情報 ＃拡散希望 ＃Tokyo ＃１ and #ok"
    post = PrivacyGate(key_file=None).apply(draft(platform="reddit", text=text), now=NOW)
    assert post.hashtags == ["拡散希望", "tokyo", "ok"]  # "＃１" is a number, as "#1" is
    assert post.text == text  # stored as written
    for query in ("#拡散希望", "＃拡散希望", "hashtag:拡散希望", "#tokyo"):
        assert matches(parse(query), post), query
