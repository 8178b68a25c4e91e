DROP TABLE sales_rollup_state;
DROP TABLE sales_rollup;
