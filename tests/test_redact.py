"""Personal data never reaches a snapshot: CTR's detail page keeps its evidence value without
its contacts' and investigators' names, phones, e-mails and addresses."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from helpers import FIXTURES
from registry_sync.model import RawPayload
from registry_sync.registries import ctr

DETAIL = FIXTURES / "ctr" / "detail_CTR20252821_completed_phase1_contacts-redacted_2026-08-13.html"
# The values the page's source overwrote before publishing it (see tests/fixtures/ctr/SOURCES.md)
PERSONAL = (
    "联系人姓名已在夹具中抹去",
    "研究者姓名已在夹具中抹去",
    "研究者地址已在夹具中抹去",
    "联系人地址已在夹具中抹去",
    "redacted@example.invalid",
    "00000000000",
)


def payload(body: bytes) -> RawPayload:
    url = "https://www.chinadrugtrials.org.cn/clinicaltrials.searchlistdetail.dhtml?id=eebd483a55a146c2b7181ba84e8a7e51"
    return RawPayload("ctr", "CTR20252821", url, datetime.now(UTC), body, "text/html")


def test_ctr_detail_redacted_keeps_every_parsed_value_CTR20252821() -> None:
    body = DETAIL.read_bytes()
    assert all(p.encode() in body for p in PERSONAL)  # the page does carry them
    redacted = ctr.redact(body)
    assert [p for p in PERSONAL if p.encode() in redacted] == []
    assert ctr.parse(payload(redacted)) == ctr.parse(payload(body))
    assert "上海交通大学医学院附属瑞金医院".encode() in redacted  # institutions are not people


def test_redaction_is_stable() -> None:
    once = ctr.redact(DETAIL.read_bytes())
    assert hashlib.sha256(ctr.redact(once)).digest() == hashlib.sha256(once).digest()


ICTRP_PAGE = FIXTURES / "ictrp" / "Trial2_NCT04280705_LF-normalized.html"
# synthetic: one contact row put into the real page's (empty) contacts table
CONTACT_ROW = (
    b'<tr><td><span id="DataList4_ctl01_Firstname">Ada</span></td>'
    b'<td><span id="DataList4_ctl01_Email">ada@example.invalid</span></td></tr></table>'
)


def test_ictrp_contacts_table_is_emptied_NCT04280705() -> None:
    from registry_sync.registries import ictrp

    body = ICTRP_PAGE.read_bytes()
    start = body.index(b'<table id="DataList4"')
    end = body.index(b"</table>", start) + len(b"</table>")
    with_contact = body[:start] + body[start:end].replace(b"</table>", CONTACT_ROW) + body[end:]
    assert b"ada@example.invalid" in with_contact
    redacted = ictrp.redact(with_contact)
    assert b"ada@example.invalid" not in redacted and b"Ada<" not in redacted
    url = "https://trialsearch.who.int/Trial2.aspx?TrialID=NCT04280705"
    asked = RawPayload("ctgov", "NCT04280705", url, datetime.now(UTC), body, source="ictrp")
    assert ictrp.parse(asked) == ictrp.parse(
        RawPayload("ctgov", "NCT04280705", url, datetime.now(UTC), redacted, source="ictrp")
    )


def test_an_email_outside_the_contacts_table_is_scrubbed_too_ictrp() -> None:
    """WHO ICTRP copies registries' free text: an address outside its contacts table goes too."""
    from registry_sync.registries import ictrp

    body = ICTRP_PAGE.read_bytes().replace(
        b"</body>", b"<p>write to ada@example.invalid</p></body>"
    )
    assert b"ada@example.invalid" in body
    assert b"ada@example.invalid" not in ictrp.redact(body)


def test_one_batch_page_is_redacted_once_for_all_its_trials() -> None:
    """A ClinicalTrials.gov batch page is the evidence of every trial in it: the page is
    redacted once per fetch, not once per trial (that was quadratic: 331 s at 1,000 trials)."""
    from registry_sync.collect import redact_exchange, remembered
    from registry_sync.model import Exchange

    calls: list[int] = []

    def counting(body: bytes) -> bytes:
        calls.append(len(body))
        return body.replace(b"ada@example.invalid", b"[redacted]")

    page = Exchange(
        "r1", "ctgov", "GET", "http://x/", 200, datetime.now(UTC), {}, b"ada@example.invalid" * 1000
    )
    once = remembered(counting)
    assert once is not None
    copies = [redact_exchange(page, once) for _ in range(50)]
    assert len(calls) == 1
    assert all(c.body == copies[0].body and b"ada@" not in c.body for c in copies)
    assert all(c.served_sha256 == page.sha256 for c in copies)
