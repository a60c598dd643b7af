from fastapi.testclient import TestClient

from app.main import SERVICE_NAME, app

client = TestClient(app)


def test_healthz() -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_info_reports_the_service_name() -> None:
    response = client.get("/v1/info")
    assert response.status_code == 200
    assert response.json()["name"] == SERVICE_NAME == "${{ values.name }}"
