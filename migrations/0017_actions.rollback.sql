DROP TABLE scheduling_links;
DROP TABLE actions;
