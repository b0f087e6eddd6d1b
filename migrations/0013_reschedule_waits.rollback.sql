DROP TABLE reschedule_waits;
