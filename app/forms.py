"""Flask-WTF forms: every form carries a CSRF token, and every field a label and a clear message."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    EmailField,
    HiddenField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length, Optional, Regexp

from app.models import OrgType, PipelineStage, Role
from app.services.accounts import EMAIL_PATTERN, MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH

ORG_TYPE_CHOICES = [SelectChoice(t.value, t.value.capitalize()) for t in OrgType]
EMAIL = [DataRequired("Enter your email address."), Regexp(EMAIL_PATTERN, message="Enter an email address.")]
NEW_PASSWORD = [
    DataRequired("Choose a password."),
    Length(
        min=MIN_PASSWORD_LENGTH,
        max=MAX_PASSWORD_LENGTH,
        message=f"Use at least {MIN_PASSWORD_LENGTH} characters (at most {MAX_PASSWORD_LENGTH}).",
    ),
]


class SignUpForm(FlaskForm):
    name = StringField("Your name", validators=[Optional(), Length(max=200)])
    email = EmailField("Work email", validators=EMAIL)
    organization = StringField(
        "Organization", validators=[DataRequired("Name your organization."), Length(max=300)]
    )
    org_type = SelectField(
        "Kind of organization", choices=[SelectChoice("", "Choose one"), *ORG_TYPE_CHOICES]
    )
    password = PasswordField("Password", validators=NEW_PASSWORD)
    confirm = PasswordField(
        "Password again",
        validators=[DataRequired("Type the password again."), EqualTo("password", "The passwords differ.")],
    )


class SignInForm(FlaskForm):
    email = EmailField("Email", validators=EMAIL)
    password = PasswordField("Password", validators=[DataRequired("Enter your password.")])
    next = HiddenField()


class ResetRequestForm(FlaskForm):
    email = EmailField("Email", validators=EMAIL)


class ResetPasswordForm(FlaskForm):
    password = PasswordField("New password", validators=NEW_PASSWORD)
    confirm = PasswordField(
        "New password again",
        validators=[DataRequired("Type the password again."), EqualTo("password", "The passwords differ.")],
    )


class InviteForm(FlaskForm):
    email = EmailField("Colleague's email", validators=EMAIL)


class AcceptInviteForm(FlaskForm):
    name = StringField("Your name", validators=[Optional(), Length(max=200)])
    password = PasswordField(
        "Password", validators=[Optional(), Length(min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH)]
    )


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=[SelectChoice(r.value, r.value.capitalize()) for r in Role])


class ButtonForm(FlaskForm):
    """A form that is only a button (delete, untrack, undo): its CSRF token is its only field."""


class ProfileForm(FlaskForm):
    name = StringField(
        "Program name",
        validators=[DataRequired("Name the program."), Length(max=300)],
        description="For example: Safe Streets Outreach",
    )
    org_type = SelectField("Applicant type", choices=ORG_TYPE_CHOICES)
    city = StringField("City", validators=[Optional(), Length(max=120)], description="For example: Baltimore")
    state = StringField(
        "State",
        validators=[Optional(), Regexp(r"^[A-Za-z]{2}$", message="Use the two-letter state code, like MD.")],
        description="Two letters, for example MD",
    )
    program_description = TextAreaField(
        "What the program does",
        validators=[DataRequired("Describe the program."), Length(min=20, max=5000)],
        description=(
            "A few sentences in your own words, for example: Credible messengers mediate conflicts and "
            "connect young adults at highest risk of gun violence to jobs and counseling."
        ),
    )
    focus_areas = StringField(
        "Focus areas",
        validators=[Optional(), Length(max=1000)],
        description="Separate with commas, e.g. street outreach, hospital-based intervention, reentry",
    )
    populations = StringField(
        "Who it serves",
        validators=[Optional(), Length(max=1000)],
        description="Separate with commas, for example: young adults 16-24, gunshot survivors",
    )
    funding_need = TextAreaField(
        "What the money would pay for",
        validators=[Optional(), Length(max=2000)],
        description="For example: salaries for six outreach workers and trauma-informed training",
    )
    budget_range = StringField(
        "Budget range",
        validators=[Optional(), Length(max=120)],
        description="For example: $250,000 to $1,000,000 a year",
    )


class DismissForm(FlaskForm):
    reason = StringField(
        "Why it is not a fit",
        validators=[DataRequired("Say why, so colleagues know."), Length(max=1000)],
        description="For example: requires a state applicant",
    )


class TrackForm(FlaskForm):
    """Track an opportunity from its page (stage ``interested``)."""


class TrackedEditForm(FlaskForm):
    stage = SelectField("Stage", choices=[SelectChoice(s.value, s.value.capitalize()) for s in PipelineStage])
    owner = SelectField("Owner", choices=[], validate_choice=False)
    internal_deadline = DateField("Internal deadline", validators=[Optional()])
    notes = TextAreaField("Notes", validators=[Optional(), Length(max=10000)])


class SavedSearchForm(FlaskForm):
    name = StringField("Name this search", validators=[DataRequired("Name the search."), Length(max=200)])
    query = HiddenField()
