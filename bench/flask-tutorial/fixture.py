"""The bench's fixture for the Flask tutorial app: unconfirmed users, their confirmation tokens, and
a logged-in session (the tutorial's confirm route is behind @login_required).

    python3 fixture.py DB_FILE PREFIX COUNT TOKEN_FILE

Creates the tables if needed; registers one user through the app's own /register (with the mail
suppressed and CSRF off, as the tutorial's tests do), which logs that user in; inserts COUNT
unconfirmed users PREFIX<n>@example.com with the same bcrypt hash (hashing each one would only slow
the fixture down), and writes each one's token, made by the app's own
generate_confirmation_token, one a line to TOKEN_FILE. Prints one line of JSON: the session
cookie ("name=value") and the count.
"""

import datetime
import json
import os
import sqlite3
import sys
import time

os.environ["WTF_CSRF_ENABLED"] = "false"
os.environ["MAIL_SUPPRESS_SEND"] = "true"

from app import bcrypt, create_app, generate_confirmation_token  # noqa: E402


def main():
    db_file, prefix, count, token_file = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    started = time.monotonic()
    app = create_app(db_file)
    client = app.test_client()
    session_user = prefix + "session@example.com"
    answer = client.post(
        "/register",
        data={"email": session_user, "password": "tutorial1", "confirm": "tutorial1"},
    )
    if answer.status_code != 302:
        raise SystemExit(f"register answered {answer.status_code}: {answer.get_data(as_text=True)[:300]}")
    # The Set-Cookie header, not the client's jar: its API differs between Werkzeug versions.
    cookies = [c.split(";", 1)[0] for c in answer.headers.getlist("Set-Cookie")]
    cookie = next((c for c in cookies if c.startswith("session=")), None)
    if cookie is None:
        raise SystemExit("register set no session cookie")

    with app.app_context():
        password = bcrypt.generate_password_hash("tutorial1").decode("utf-8")
        emails = [f"{prefix}{n}@example.com" for n in range(count)]
        tokens = [generate_confirmation_token(app, email) for email in emails]
    now = datetime.datetime.now().isoformat(sep=" ")
    connection = sqlite3.connect(db_file, timeout=30)
    with connection:
        connection.executemany(
            "INSERT INTO users (email, password, registered_on, admin, confirmed) VALUES (?, ?, ?, 0, 0)",
            ((email, password, now) for email in emails),
        )
    connection.close()
    with open(token_file, "w") as out:
        out.write("\n".join(tokens) + "\n")
    print(json.dumps({"cookie": cookie, "count": count, "seconds": time.monotonic() - started}))


if __name__ == "__main__":
    main()
