DROP TABLE erased_invitees;
