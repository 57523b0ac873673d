"""gunicorn settings for the API: `gunicorn -c config/gunicorn.conf.py config.wsgi:application`.

Command-line flags (bind, workers, threads) override these. Its own error and
access logs go through notifier.pii.PiiFilter like Django's: a URL such as
/api/v1/recipients/alice@example.com/ is logged masked.
"""
from gunicorn.glogging import Logger

from notifier.pii import PiiFilter


class PiiMaskingLogger(Logger):
    def setup(self, cfg):
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.addFilter(PiiFilter())


logger_class = PiiMaskingLogger
