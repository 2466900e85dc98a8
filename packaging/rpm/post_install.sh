# tokdrop %post (RPM; $1 = 1 on install, 2 on upgrade). Same as packaging/debian/postinst:
# user, directories, daemon-reload; nothing is started on install (see INSTALL.md).
systemd-sysusers tokdrop.conf || :
systemd-tmpfiles --create tokdrop.conf || :
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || :
fi
if [ "$1" -eq 1 ]; then
    echo "tokdrop installed, not started. Next: edit /etc/tokdrop/watch.yaml, put the client"
    echo "secret in /etc/tokdrop/client_secret (0600), log in, then"
    echo "systemctl enable --now tokdrop.socket tokdrop.service (/usr/share/doc/tokdrop/INSTALL.md)."
fi
