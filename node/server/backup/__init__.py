"""The backup room: ``archive`` (a backup directory: files kept once, a manifest per
backup), ``tar_stream`` (a backup as one tar stream), ``describe`` (what a backup is
of), ``fetch`` (``rumor admin backup``: Admin.Backup into a directory or a stream),
``restore`` (``rumor admin restore``: a verified copy into a new data directory) and
``scheduled`` (the node's own backups, ``--backup-dir``)."""
