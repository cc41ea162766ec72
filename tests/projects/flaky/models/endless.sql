select count(*) as n from range(100000000000) as t(i) where i % 7 = 3
