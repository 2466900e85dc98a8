# tokdrop %postun (RPM; $1 = 0 on removal, 1 on upgrade): forget the units; on upgrade
# restart running instances with the new binary (an item in flight resumes from the journal).
# State in /var/lib/tokdrop, logs and media are kept; remove them by hand if wanted.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || :
    if [ "$1" -ge 1 ]; then
        systemctl try-restart tokdrop.service 'tokdrop@*.service' || :
    fi
fi
