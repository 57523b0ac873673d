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
