"""The three demo apps (Flask-CAS, python-cas, pycas-sso) signing in through tessera
in a browser that follows every redirect hop by hop."""

from __future__ import annotations

import itertools

import pytest

from harness import (
    ALICE,
    FUMBLERS,
    TICKET_RE,
    assert_alice_attributes,
    describe,
    sign_in_via_app,
    ticket_in,
)

APP_NAMES = ["flask-cas", "python-cas", "pycas-sso"]
EACH_APP = pytest.mark.parametrize("app_name", APP_NAMES)


@EACH_APP
def test_signing_in_through_tessera_shows_the_user_and_attributes(stack, browser, app_name):
    app = stack.apps[app_name]

    hops = sign_in_via_app(browser, stack.tessera, app, ALICE)

    who = hops[-1].whoami()
    assert who["client"] == app_name
    assert who["user"] == "alice"
    assert_alice_attributes(who["attributes"])
    # The credential POST itself answers 302 straight to the app with the ticket.
    post = next(h for h in hops if h.method == "POST")
    assert post.status == 302, describe(hops)
    assert post.location.startswith(app.callback_url), describe(hops)
    arrived = app.ticket_hops(hops)
    assert len(arrived) == 1, describe(hops)
    assert TICKET_RE.match(ticket_in(arrived[0].url))


@EACH_APP
def test_a_wrong_password_is_refused_and_the_app_never_sees_a_ticket(stack, browser, app_name):
    app = stack.apps[app_name]
    user = FUMBLERS[app_name]
    tickets_before = list(app.tickets_seen)
    form_page = browser.follow(app.protected_url)[-1]
    assert form_page.shows_login_form, form_page.describe()

    refused = browser.submit_login(form_page, user.name, user.password + "-wrong")

    assert len(refused) == 1, f"a refused login must not redirect:\n{describe(refused)}"
    assert refused[0].status == 401
    assert refused[0].shows_login_form
    assert browser.cookie("TGC") is None
    assert app.tickets_seen == tickets_before

    # The form shown again is a working form: the right password gets through.
    retry = browser.submit_login(refused[0], user.name, user.password)
    who = retry[-1].whoami()
    assert who is not None and who["user"] == user.name, describe(retry)


@pytest.mark.parametrize(
    ("first", "second"),
    list(itertools.permutations(APP_NAMES, 2)),
    ids=lambda name: name,
)
def test_signing_into_one_app_gives_single_sign_on_to_another(stack, browser, first, second):
    sign_in_via_app(browser, stack.tessera, stack.apps[first], ALICE)
    other = stack.apps[second]

    hops = browser.follow(other.protected_url)

    assert not any(h.shows_login_form for h in hops), f"a login form was shown:\n{describe(hops)}"
    from_tessera = [
        h for h in hops
        if h.url.startswith(stack.tessera.base) and h.is_redirect and ticket_in(h.location)
    ]
    assert len(from_tessera) == 1, describe(hops)
    assert from_tessera[0].location.startswith(other.callback_url), describe(hops)
    who = hops[-1].whoami()
    assert who is not None, describe(hops)
    assert who["client"] == second
    assert who["user"] == "alice"
    assert_alice_attributes(who["attributes"])


@EACH_APP
def test_signing_out_through_the_app_ends_the_tessera_session(stack, browser, app_name):
    app = stack.apps[app_name]
    sign_in_via_app(browser, stack.tessera, app, ALICE)

    hops = browser.follow(app.logout_url)

    assert any(h.url.startswith(stack.tessera.url("logout")) for h in hops), describe(hops)
    assert hops[-1].url == app.after_logout_url, f"not sent back to the app:\n{describe(hops)}"
    assert hops[-1].status == 200

    again = browser.follow(app.protected_url)
    assert again[-1].url.startswith(stack.tessera.base), describe(again)
    assert again[-1].status == 200 and again[-1].shows_login_form, describe(again)
    assert not any(h.location and ticket_in(h.location) for h in again), describe(again)


@EACH_APP
def test_a_replayed_ticket_is_refused_by_the_app(stack, new_browser, app_name):
    app = stack.apps[app_name]
    at_tessera = lambda url: url.startswith(stack.tessera.root)  # noqa: E731
    victim = new_browser()
    hops = sign_in_via_app(victim, stack.tessera, app, ALICE)
    ticket_url = app.ticket_hops(hops)[0].url
    ticket = ticket_in(ticket_url)

    replayer = new_browser()
    # Let the app set up whatever it keeps per visitor before it sends them to CAS
    # (Flask-CAS derives the service URL from it), then hand it the used ticket.
    replayer.follow(app.protected_url, stop=at_tessera)
    replay = replayer.follow(ticket_url, stop=at_tessera)

    assert app.tickets_seen.count(ticket) == 2
    assert not any(h.whoami() for h in replay), f"the app accepted a used ticket:\n{describe(replay)}"
    after = replayer.follow(app.protected_url, stop=at_tessera)
    assert after[-1].is_redirect and at_tessera(after[-1].location), (
        f"the replayer is signed in:\n{describe(after)}"
    )
