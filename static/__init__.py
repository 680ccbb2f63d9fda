"""static/ is the package auth.static (pyproject.toml): the wheel installs it inside auth, and
an editable install maps a package to a folder outside auth only when it is a regular one."""
