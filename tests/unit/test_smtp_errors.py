import smtplib
import socket

from notifier.channels.email import classify_smtp_error


def test_smtp_5xx_is_permanent():
    assert classify_smtp_error(smtplib.SMTPDataError(550, b"mailbox unavailable")).permanent


def test_smtp_4xx_is_transient():
    error = classify_smtp_error(smtplib.SMTPDataError(451, b"try later"))
    assert not error.permanent and error.code == "451"


def test_refused_recipient_with_5xx_is_permanent():
    exc = smtplib.SMTPRecipientsRefused({"a@x.io": (550, b"no such user")})
    assert classify_smtp_error(exc).permanent


def test_connection_errors_are_transient():
    assert not classify_smtp_error(ConnectionRefusedError()).permanent
    assert not classify_smtp_error(socket.timeout()).permanent
    assert not classify_smtp_error(smtplib.SMTPServerDisconnected()).permanent


# --- input errors: permanent, and never a breaker's business (issue 22, item 4) ----------------

def _input_errors():
    import email.errors

    from django.core.mail import BadHeaderError

    yield email.errors.HeaderParseError("header value appears to contain an embedded header: 'a\\nBcc: x'")
    yield BadHeaderError("Header values can't contain newlines")
    yield UnicodeError("encoding with 'idna' codec failed (UnicodeError: label empty or too long)")
    yield ValueError("Invalid address \"a@\"")


def test_a_message_python_cannot_write_out_is_a_permanent_input_error():
    for exc in _input_errors():
        error = classify_smtp_error(exc)
        assert error.permanent and error.bad_input, exc
        assert error.code == "invalid_message" and not error.suppress


def test_smtp_replies_and_connection_trouble_are_not_input_errors():
    for exc in (smtplib.SMTPDataError(554, b"5.7.1 rejected"), smtplib.SMTPDataError(451, b"later"),
                smtplib.SMTPRecipientsRefused({"a@x.io": (550, b"5.1.1 no such user")}),
                smtplib.SMTPSenderRefused(553, b"5.7.1 sender not allowed", "n@x.io"),
                ConnectionResetError(), socket.timeout(), smtplib.SMTPServerDisconnected()):
        assert not classify_smtp_error(exc).bad_input, exc


def test_any_error_while_opening_the_session_is_the_relays_and_transient():
    # A 554 instead of the greeting, a refused login, a relay that hangs up: no message is at fault.
    for exc in (smtplib.SMTPConnectError(554, b"5.3.2 no SMTP service here"),
                smtplib.SMTPAuthenticationError(535, b"5.7.8 bad credentials"),
                smtplib.SMTPConnectError(421, b"4.3.2 busy"),
                ConnectionRefusedError(), smtplib.SMTPServerDisconnected(),
                UnicodeEncodeError("ascii", "pässword", 1, 2, "ordinal not in range")):
        error = classify_smtp_error(exc, connecting=True)
        assert not error.permanent and not error.bad_input, exc
