# tokdrop %preun (RPM; $1 = 0 on removal, 1 on upgrade): stop and disable on removal only.
if [ "$1" -eq 0 ] && [ -d /run/systemd/system ]; then
    systemctl stop tokdrop.socket tokdrop.service 'tokdrop@*.service' || :
    systemctl disable --quiet tokdrop.socket tokdrop.service || :
fi
