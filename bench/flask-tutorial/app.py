"""The classic "email confirmation in Flask" tutorial app, as the bench's point of comparison.

This follows the structure of Real Python's "Handling Email Confirmation During Registration in
Flask" (Michael Herman), the tutorial most Flask sign-ups descend from: Flask-SQLAlchemy on
SQLite, Flask-Login sessions, Flask-Bcrypt passwords, Flask-WTF forms, Flask-Mail sent inside the
request, and an itsdangerous URLSafeTimedSerializer token that carries the address itself (so
nothing about the token is stored, and a link works as often as it is opened until it expires).
`GET /confirm/<token>` confirms, behind `@login_required`, and answers with a redirect.

It is written here from the tutorial's description, kept to what the bench runs: register (which
the fixture uses to log a user in), login, logout and confirm. Run by `npm run bench` (phase
"flask"), never by the tests. Debian packages: python3-flask python3-flask-sqlalchemy
python3-flask-login python3-flask-bcrypt python3-flask-mail python3-flaskext.wtf gunicorn.

    gunicorn --workers 5 --bind 127.0.0.1:5000 'app:create_app()'   # from bench/flask-tutorial
    FLASK_TUTORIAL_DB=/tmp/dev.sqlite python3 app.py                # the dev server, as the tutorial runs it
"""

import datetime
import os

from flask import Flask, flash, redirect, render_template_string, request, url_for
from flask_bcrypt import Bcrypt
from flask_login import LoginManager, UserMixin, current_user, login_required, login_user, logout_user
from flask_mail import Mail, Message
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import FlaskForm
from itsdangerous import URLSafeTimedSerializer
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length

db = SQLAlchemy()
bcrypt = Bcrypt()
mail = Mail()
login_manager = LoginManager()
login_manager.login_view = "login"


class User(db.Model, UserMixin):
    __tablename__ = "users"

    id = db.Column(db.Integer, primary_key=True)
    email = db.Column(db.String, unique=True, nullable=False)
    password = db.Column(db.String, nullable=False)
    registered_on = db.Column(db.DateTime, nullable=False)
    admin = db.Column(db.Boolean, nullable=False, default=False)
    confirmed = db.Column(db.Boolean, nullable=False, default=False)
    confirmed_on = db.Column(db.DateTime, nullable=True)


@login_manager.user_loader
def load_user(user_id):
    return db.session.get(User, int(user_id))


# token.py in the tutorial
def generate_confirmation_token(app, email):
    serializer = URLSafeTimedSerializer(app.config["SECRET_KEY"])
    return serializer.dumps(email, salt=app.config["SECURITY_PASSWORD_SALT"])


def confirm_token(app, token, expiration=3600):
    serializer = URLSafeTimedSerializer(app.config["SECRET_KEY"])
    try:
        return serializer.loads(token, salt=app.config["SECURITY_PASSWORD_SALT"], max_age=expiration)
    except Exception:
        return False


class RegisterForm(FlaskForm):
    email = StringField("email", validators=[DataRequired(), Email(message=None), Length(min=6, max=40)])
    password = PasswordField("password", validators=[DataRequired(), Length(min=6, max=25)])
    confirm = PasswordField("Repeat password", validators=[DataRequired(), EqualTo("password")])


class LoginForm(FlaskForm):
    email = StringField("email", validators=[DataRequired(), Email()])
    password = PasswordField("password", validators=[DataRequired()])


PAGE = """<!doctype html><title>{{ title }}</title>
{% for category, message in get_flashed_messages(with_categories=true) %}<p class="{{ category }}">{{ message }}</p>{% endfor %}
{% if form %}<form method="post">{{ form.hidden_tag() }}{% for field in form if field.name != 'csrf_token' %}
<label>{{ field.label }} {{ field() }}</label>{% endfor %}<button>{{ title }}</button></form>{% endif %}
{% if body %}<p>{{ body }}</p>{% endif %}"""

CONFIRM_EMAIL = """<p>Welcome! Thanks for signing up. Please follow this link to activate your account:</p>
<p><a href="{{ confirm_url }}">{{ confirm_url }}</a></p>"""


def create_app(database_path=None):
    app = Flask(__name__)
    path = database_path or os.environ.get("FLASK_TUTORIAL_DB") or os.path.abspath("dev.sqlite")
    app.config.update(
        SECRET_KEY=os.environ.get("SECRET_KEY", "my_precious"),
        SECURITY_PASSWORD_SALT=os.environ.get("SECURITY_PASSWORD_SALT", "my_precious_two"),
        SQLALCHEMY_DATABASE_URI="sqlite:///" + path,
        SQLALCHEMY_TRACK_MODIFICATIONS=False,
        WTF_CSRF_ENABLED=os.environ.get("WTF_CSRF_ENABLED", "true") == "true",
        MAIL_SERVER=os.environ.get("MAIL_SERVER", "127.0.0.1"),
        MAIL_PORT=int(os.environ.get("MAIL_PORT", "2525")),
        MAIL_USE_TLS=False,
        MAIL_USE_SSL=False,
        MAIL_DEFAULT_SENDER="from@example.com",
        MAIL_SUPPRESS_SEND=os.environ.get("MAIL_SUPPRESS_SEND", "false") == "true",
    )
    db.init_app(app)
    bcrypt.init_app(app)
    mail.init_app(app)
    login_manager.init_app(app)
    with app.app_context():
        db.create_all()

    def send_email(to, subject, template):
        msg = Message(subject, recipients=[to], html=template, sender=app.config["MAIL_DEFAULT_SENDER"])
        mail.send(msg)

    @app.route("/")
    @login_required
    def home():
        if not current_user.confirmed:
            return redirect(url_for("unconfirmed"))
        return render_template_string(PAGE, title="Home", form=None, body="Welcome!")

    @app.route("/register", methods=["GET", "POST"])
    def register():
        form = RegisterForm(request.form)
        if form.validate_on_submit():
            user = User(
                email=form.email.data,
                password=bcrypt.generate_password_hash(form.password.data).decode("utf-8"),
                registered_on=datetime.datetime.now(),
                confirmed=False,
            )
            db.session.add(user)
            db.session.commit()
            token = generate_confirmation_token(app, user.email)
            confirm_url = url_for("confirm_email", token=token, _external=True)
            html = render_template_string(CONFIRM_EMAIL, confirm_url=confirm_url)
            send_email(user.email, "Please confirm your email", html)
            login_user(user)
            flash("A confirmation email has been sent via email.", "success")
            return redirect(url_for("unconfirmed"))
        return render_template_string(PAGE, title="Register", form=form, body=None)

    @app.route("/login", methods=["GET", "POST"])
    def login():
        form = LoginForm(request.form)
        if form.validate_on_submit():
            user = User.query.filter_by(email=form.email.data).first()
            if user and bcrypt.check_password_hash(user.password, request.form["password"]):
                login_user(user)
                flash("Welcome.", "success")
                return redirect(url_for("home"))
            flash("Invalid email and/or password.", "danger")
        return render_template_string(PAGE, title="Login", form=form, body=None)

    @app.route("/logout")
    @login_required
    def logout():
        logout_user()
        flash("You were logged out.", "success")
        return redirect(url_for("login"))

    @app.route("/confirm/<token>")
    @login_required
    def confirm_email(token):
        email = confirm_token(app, token)
        if email is False:
            flash("The confirmation link is invalid or has expired.", "danger")
        user = User.query.filter_by(email=email).first_or_404()
        if user.confirmed:
            flash("Account already confirmed. Please login.", "success")
        else:
            user.confirmed = True
            user.confirmed_on = datetime.datetime.now()
            db.session.add(user)
            db.session.commit()
            flash("You have confirmed your account. Thanks!", "success")
        return redirect(url_for("home"))

    @app.route("/unconfirmed")
    @login_required
    def unconfirmed():
        if current_user.confirmed:
            return redirect(url_for("home"))
        return render_template_string(PAGE, title="Unconfirmed", form=None, body="Please confirm your account.")

    return app


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "5000"))
    create_app().run(host="127.0.0.1", port=port)
