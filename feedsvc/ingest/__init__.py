"""What comes in: the record contract (records), safe HTML (sanitize), the one write path (write)
and the file importer (importer) that feeds it."""
