from tests.support.telegram_fixtures import service, telegram_server, tg

__all__ = ["service", "telegram_server", "tg"]
