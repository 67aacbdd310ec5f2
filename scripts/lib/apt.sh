# Shared by the setup scripts (sourced, POSIX sh): installing Debian packages
# non-interactively, as root or through passwordless sudo. CI runs as root with no stdin.

# Sets SUDO to "" (root) or "sudo -n" (passwordless sudo works); returns 1 when neither.
apt_can_install() {
    if [ "$(id -u)" -eq 0 ]; then
        SUDO=""
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        return 1
    fi
}

# apt_install PACKAGE...: refreshes the package lists and installs without recommends.
# Call apt_can_install first. `env` passes DEBIAN_FRONTEND through sudo's env_reset.
apt_install() {
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update </dev/null &&
        $SUDO env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y --no-install-recommends "$@" </dev/null
}
