"""The pages, in process (no stack): what is served where, and only where it should be."""

from __future__ import annotations

import json
from xml.etree import ElementTree

import boto3
import pytest
from fastapi.testclient import TestClient

from lightbox.catalog import load_scenes
from lightbox.config import Settings
from lightbox.services.context import Context
from lightbox.web.app import create_app

HTML = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def _client(**environment: str) -> TestClient:
    settings = Settings(**{"BUCKET_NAME": "shop-images", **environment})
    # Pages sign URLs for their security policy (locally, no request is made).
    s3 = boto3.client("s3", region_name="eu-west-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing")
    return TestClient(create_app(Context(settings=settings, dynamodb=None, s3=s3,
                                         stepfunctions=None)))


@pytest.mark.parametrize("path", ["/", "/sign-in", "/jobs/some-job", "/tools"])
def test_every_page_is_html_with_its_script_and_the_pages_config(path: str) -> None:
    page = _client(CHECKOUT_MODE="stripe").get(path)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    config = json.loads(page.text.split('type="application/json">')[1].split("</script>")[0])
    assert config["checkoutMode"] == "stripe"
    assert '<script src="/static/app.js" defer></script>' in page.text


def test_the_local_checkout_exists_only_when_checkout_is_local() -> None:
    # Given the same app with Stripe checkout and with the local one
    stripe, local = _client(CHECKOUT_MODE="stripe"), _client(CHECKOUT_MODE="local")
    # Then only the local one has the page, and the Pay endpoint in its schema
    assert stripe.get("/checkout/local?pack=starter").status_code == 404
    assert stripe.post("/api/checkout/local", json={"pack_id": "starter"}).status_code == 404
    assert "/api/checkout/local" not in stripe.get("/openapi.json").json()["paths"]
    assert local.get("/checkout/local?pack=starter").status_code == 200
    assert "/api/checkout/local" in local.get("/openapi.json").json()["paths"]
    # and its Pay endpoint still wants a signed-in user
    assert local.post("/api/checkout/local", json={"pack_id": "starter"}).status_code == 401


@pytest.mark.parametrize("path", ["/no-such-page", "/jobs/a/b", "/checkout/local"])
def test_a_browser_at_an_address_that_is_no_page_gets_a_page_that_says_so(path: str) -> None:
    page = _client(CHECKOUT_MODE="stripe").get(path, headers={"accept": HTML})
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "There is no page at this address" in page.text
    assert '<a class="button" href="/">' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


@pytest.mark.parametrize("path", ["/api/no-such-thing", "/static/none.js", "/webhooks/none"])
def test_an_unknown_address_in_the_api_is_still_the_api_error(path: str) -> None:
    answer = _client().get(path, headers={"accept": HTML})
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"


def test_a_client_that_does_not_ask_for_html_gets_the_api_error() -> None:
    answer = _client().get("/no-such-page", headers={"accept": "application/json"})
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"


def test_sign_in_offers_the_hosted_ui_when_cognito_is_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the API function's environment names a Cognito hosted UI
    monkeypatch.setenv("COGNITO_DOMAIN", "https://shop.auth.eu-west-1.amazoncognito.com/")
    monkeypatch.setenv("COGNITO_CLIENT_ID", "client123")
    # When the sign-in page is served
    page = _client(CHECKOUT_MODE="stripe").get("/sign-in").text
    # Then it links to the hosted UI, with no local form
    assert 'id="hosted-sign-in"' in page and 'id="local-sign-in"' not in page
    assert '"domain": "https://shop.auth.eu-west-1.amazoncognito.com"' in page


def test_without_cognito_in_aws_sign_in_says_it_is_not_set_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("COGNITO_DOMAIN", raising=False)
    page = _client(CHECKOUT_MODE="stripe").get("/sign-in").text
    assert 'id="local-sign-in"' not in page and "Sign-in is not set up" in page


def test_every_scene_has_a_thumbnail_in_its_colours() -> None:
    client = _client()
    for scene in load_scenes().values():
        answer = client.get(f"/scenes/{scene.id}.svg")
        assert answer.headers["content-type"] == "image/svg+xml"
        svg = ElementTree.fromstring(answer.content)
        top = scene.look["backdrop"]["top"]
        assert f'stop-color="rgb({top[0]},{top[1]},{top[2]})"' in answer.text, scene.id
        assert svg.tag.endswith("svg")
    assert client.get("/scenes/no-such-scene.svg").status_code == 404


def test_a_job_id_in_the_address_is_escaped_in_the_page() -> None:
    page = _client().get("/jobs/%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E").text
    assert "<img src=x" not in page
    assert 'data-job-id="&#34;&gt;&lt;img src=x onerror=alert(1)&gt;"' in page


def test_the_tools_page_offers_each_tool_its_option_and_every_preset() -> None:
    page = _client(CHECKOUT_MODE="local").get("/tools")
    assert page.status_code == 200
    for tool in ("remove-background", "upscale", "fit"):
        assert f'id="tool-{tool}" value="{tool}"' in page.text
    assert '<option value="4">' in page.text
    assert '<option value="amazon-main" selected>' in page.text
    assert '<option value="instagram-story"' in page.text
    assert '<script src="/static/upload.js" defer></script>' in page.text
    assert '<script src="/static/tools.js" defer></script>' in page.text
    # and every page links to it
    assert '<a href="/tools">Tools</a>' in _client(CHECKOUT_MODE="local").get("/").text


def test_the_upload_page_has_the_avatar_picker_and_its_script() -> None:
    # Given the upload page and the avatar picker's script
    client = _client()
    page = client.get("/").text
    script = client.get("/static/avatars.js")
    # Then the page loads the picker before the page's own script, which uses it
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert page.index('<script src="/static/avatars.js" defer>') < page.index(
        '<script src="/static/home.js" defer>')
    # and holds the picker (hidden until a "with a model" scene is chosen): the filters,
    # the grid, the pager, and "Create your own" with its cost and candidates
    for element in ('<fieldset class="avatar-picker" id="avatar-picker"',
                    'id="avatar-filters" role="group" aria-label="Filter the avatars"',
                    '<ul class="avatars" id="avatars"', 'id="avatar-pager"',
                    'id="avatar-error" role="alert"', "<summary>Create your own</summary>",
                    'id="wizard-fields"', 'id="wizard-cost"', 'id="wizard-create"',
                    'id="candidates"'):
        assert element in page, element
    # and every control of it has a label
    for control in ("avatar-source", "avatar-usable", "wizard-name", "wizard-candidates"):
        assert f'<label for="{control}"' in page, control
    # and the script calls the avatars API the page relies on; the order sends the choice
    for call in ("/api/avatars/options", "/api/avatars?", "/keep"):
        assert call in script.text, call
    assert "avatar_id: avatarId" in client.get("/static/home.js").text


def test_pages_run_only_their_own_scripts_and_reach_only_the_bucket_and_cognito(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As deployed: the bucket at its AWS address (a local stack in this process may have
    # pointed every client at itself).
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("COGNITO_DOMAIN", "https://shop.auth.eu-west-1.amazoncognito.com")
    monkeypatch.setenv("COGNITO_CLIENT_ID", "client123")
    page = _client(CHECKOUT_MODE="stripe").get("/")
    policy = dict(part.strip().split(" ", 1) for part in
                  page.headers["content-security-policy"].split(";"))
    assert policy["script-src"] == "'self'"  # no inline script runs
    assert policy["frame-ancestors"] == "'none'"
    assert "https://shop-images.s3.amazonaws.com" in policy["connect-src"]  # the upload POST
    assert "https://shop.auth.eu-west-1.amazoncognito.com" in policy["connect-src"]
    assert "shop-images" in policy["img-src"]  # presigned GETs of the shots
    assert page.headers["x-content-type-options"] == "nosniff"
