"""What the tests share besides fixtures: fakes of the chat platforms' servers, whole-bot
harnesses, builders of pools and media, hostile files, servers for PostgreSQL and S3.

Test modules and conftest files import from here and never from one another, so a test
module can be read, moved or deleted without breaking another (``tests/test_test_imports.py``
holds that). Fixtures stay in conftest files and call into these modules.
"""
