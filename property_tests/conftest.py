"""Property suites: profiles are registered (and chosen by HYPOTHESIS_PROFILE) on import."""

from property_tests import profiles  # noqa: F401 - registers and loads the profile
