from __future__ import annotations

import pytest

from murmur.privacy.redact import Redactor, aadhaar_ok, cpf_ok, dni_ok, iban_ok, luhn_ok, nir_ok
from murmur.urls import domain_of


@pytest.fixture
def redactor() -> Redactor:
    return Redactor(public_accounts=["@WHO", "nytimes.bsky.social"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to jane.doe+x@example.co.uk now", "write to <EMAIL> now"),
        ("call +1 (415) 555-2671 today", "call <PHONE> today"),
        ("ruf an: 030 1234567", "ruf an: <PHONE>"),
        ("UK 020 7946 0958.", "UK <PHONE>."),
        ("card 4111 1111 1111 1111 ok", "card <CARD> ok"),
        ("card 4111-1111-1111-1111", "card <CARD>"),
        ("iban DE89 3704 0044 0532 0130 00 ok", "iban <IBAN> ok"),
        ("iban GB82WEST12345698765432", "iban <IBAN>"),
        ("ssn 123-45-6789", "ssn <SSN>"),
        ("from 192.168.1.20 and 2001:db8::1", "from <IP> and <IP>"),
        ("lives at 221 Baker Street now", "lives at <ADDRESS> now"),
        ("wohnt in der Hauptstraße 5 in Berlin", "wohnt in der <ADDRESS> in Berlin"),
        ("hi @alice.bsky.social and @bob@mastodon.social", "hi @user and @user"),
        ("thanks @WHO and @nytimes.bsky.social", "thanks @WHO and @nytimes.bsky.social"),
        ("read https://www.nytimes.com/2024/01/01/world/x.html?id=7.", "read nytimes.com."),
        ("see bsky.app/profile/alice.bsky.social/post/3k", "see bsky.app"),
        # digits grouped with no-break spaces: typeset French numbers, and &nbsp; in HTML posts
        ("appelez le 06\u00a012\u00a034\u00a056\u00a078", "appelez le <PHONE>"),
        ("tél. 06\u202f12\u202f34\u202f56\u202f78", "tél. <PHONE>"),
        ("call +44\u00a020\u00a07946\u00a00958", "call <PHONE>"),
        ("card 4111\u20091111\u20091111\u20091111", "card <CARD>"),
        ("IBAN FR76\u00a03000\u00a06000\u00a00112\u00a03456\u00a07890\u00a0189", "IBAN <IBAN>"),
        ("بطاقة ٤١١١ ١١١١ ١١١١ ١١١١", "بطاقة <CARD>"),
        ("कार्ड ४१११ ११११ ११११ ११११", "कार्ड <CARD>"),
        # national identity numbers whose check digits (or letter) hold
        ("meu CPF 123.456.789-09, obrigado", "meu CPF <ID>, obrigado"),
        ("aadhaar 2345 6789 0124 linked", "aadhaar <ID> linked"),
        ("aadhaar no. 234567890124", "aadhaar no. <ID>"),
        ("NIR 1 85 05 78 006 084 91", "NIR <ID>"),
        ("mi DNI es 12345678Z", "mi DNI es <ID>"),
        ("NIE X1234567L", "NIE <ID>"),
        ("NI number AB 12 34 56 C", "NI number <ID>"),
        ("ni ab123456c", "ni <ID>"),
        ("call +91 98765 43210", "call <PHONE>"),  # an Indian phone number stays one
        # a phone number beside a date is still found once the date is taken out; two-digit years
        # are not taken for dates (the groups of a French number would read as one)
        ("2016-07-17 555-123-4567", "<PHONE>"),
        ("tel 01-23-45-67-89", "tel <PHONE>"),
        (
            "uuid 12345678-1234-1234-1234-123456789012 and +1 (760) 434-7878",
            "uuid 12345678-1234-1234-1234-123456789012 and <PHONE>",
        ),
    ],
)
def test_redacts(redactor: Redactor, text: str, expected: str) -> None:
    assert redactor.redact(text).text == expected


@pytest.mark.parametrize(
    "text",
    [
        "the year 2024 had 365 days",
        "price 1,299.99 EUR",
        "version 3.14 is out at 10:30",
        "std::vector and c++ ::",
        "card 4111 1111 1111 1112 fails Luhn",
        "DE00 1234 5678 9012 3456 78 fails mod 97",
        "学校で 2024年 に",
        "aadhaar 2345 6789 0125 fails Verhoeff",
        "dni 12345678A has the wrong letter",
        "NIR 1 85 05 78 006 084 36 has the wrong key",
        "BG 12 34 56 A is no NI prefix",
        # dates and times, as real posts wrote them (each was replaced as a phone number before)
        "top posts from 2011-12-08 to 2012-09-21 13:19 PDT",
        "Wann? 30.08.2013 17:14 Uhr!",
        "Dauer: 22.08.2013 08:30 Uhr bis 16:00",
        "10. 2012-03-22 top submission",
        "on 2019-12-27 96.88% match",
        "fall rechts vor links gesucht 09.03.2013",
        "from 07/17/2016 10:45 on",
        # an identifier of a thing is no one's number
        "Unique reply: 2851a23d-0782-4863-a3f0-53c7d310e2a1",
    ],
)
def test_leaves_ordinary_text(redactor: Redactor, text: str) -> None:
    result = redactor.redact(text)
    assert result.text == text
    assert result.count == 0


def test_counts_and_domains(redactor: Redactor) -> None:
    result = redactor.redact("mail a@b.org, see https://x.example.com/a and http://www.Example.com:8080/b")
    assert result.count == 1
    assert result.domains == ("x.example.com", "example.com")


def test_checksums() -> None:
    assert luhn_ok("4111111111111111")
    assert not luhn_ok("4111111111111112")
    assert iban_ok("DE89370400440532013000")
    assert not iban_ok("DE89370400440532013001")
    assert cpf_ok("529.982.247-25")  # the example the Receita Federal's documentation uses
    assert not cpf_ok("123.456.789-00")
    assert not cpf_ok("111.111.111-11")  # one digit repeated passes mod 11 but is no CPF
    assert aadhaar_ok("234567890124")
    assert not aadhaar_ok("034567890124")  # Aadhaar numbers never start with 0 or 1
    assert dni_ok("12345678Z")
    assert dni_ok("Y1234567X")
    assert not dni_ok("1234567Z")
    assert nir_ok("185057800608491")
    assert not nir_ok("385057800608491")


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://user:pw@WWW.Example.com:443/x", "example.com"),
        ("example.org/path", "example.org"),
        ("https://localhost/x", None),
        ("http://[::1/", None),
    ],
)
def test_domain_of(url: str, host: str | None) -> None:
    assert domain_of(url) == host


def test_reddit_user_mentions(redactor: Redactor) -> None:
    assert redactor.redact("thanks /u/spez and u/Some_User!").text == "thanks u/user and u/user!"


def test_reddit_user_mention_longer_than_reddit_allows(redactor: Redactor) -> None:
    # Seen in the shared Reddit comments: a 21-character name, one past Reddit's limit, stayed whole.
    text = "Where's u/a_poem_for_your_sprog when you need him"
    assert redactor.redact(text).text == "Where's u/user when you need him"


def test_account_ids_quoted_in_text(redactor: Redactor) -> None:
    text = "{'id': 't2_1w3o', 'did': 'did:plc:kvwvcn5iqfooopmyzvb4qzba'}"
    assert redactor.redact(text).text == "{'id': '<ACCOUNT>', 'did': '<ACCOUNT>'}"


def test_a_markdown_link_target_goes_whole_even_with_spaces(redactor: Redactor) -> None:
    # a real AskReddit bot comment: the link target holds spaces, and its query string was stored
    # from the first space on ("reddit.com Related Post Review Request&message=...")
    text = (
        "Please [contact the mods](http://www.reddit.com/message/compose?to=%2Fr%2FAskReddit"
        "&subject=Help Related Post Review Request&message=My post was removed) if you have questions."
    )
    result = redactor.redact(text)
    assert result.text == "Please [contact the mods](reddit.com) if you have questions."
    assert result.domains == ("reddit.com",)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a mention or an e-mail starts where the character before its "@" allows it, first or not
        ("@alice hi", "@user hi"),
        ("hi @alice", "hi @user"),
        ("(@alice)", "(@user)"),
        ("x@alice and @@bob", "x@alice and @@bob"),
        ("a@b.org", "<EMAIL>"),
        ("@a@b.org", "@user"),
        # the numeric forms start a word (or follow a "+", "(" or ":" that does)
        ("123-45-6789", "<SSN>"),
        ("x123-45-6789 _123-45-6789", "x123-45-6789 _123-45-6789"),
        ("(415) 555-2671", "<PHONE>"),
        ("2001:db8::1 and x2001:db8::1", "<IP> and x2001:db8::1"),
        ("+14155552671", "<PHONE>"),
        ("id12345678Z", "id12345678Z"),
    ],
)
def test_where_spans_may_start(text: str, expected: str) -> None:
    """Without public accounts, and at the start of a text or right after another character."""
    assert Redactor().redact(text).text == expected
