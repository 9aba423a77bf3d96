use super::{AckToken, BrokerConfig, BrokerError, ConsumerStats, Message, PublisherStats};
#[derive(Debug, Clone)]
pub struct AmqpPublisher;
#[derive(Debug)]
pub struct AmqpConsumer;
impl AmqpPublisher {
    pub async fn connect(url: &str, _c: &BrokerConfig) -> Result<Self, BrokerError> {
        Err(BrokerError::UnsupportedScheme { url: url.into() })
    }
    pub async fn publish(&self, _b: Vec<u8>) -> Result<(), BrokerError> {
        Ok(())
    }
    pub async fn ping(&self) -> Result<(), BrokerError> {
        Ok(())
    }
    pub fn stats(&self) -> PublisherStats {
        PublisherStats::default()
    }
}
impl AmqpConsumer {
    pub async fn connect(url: &str, _c: &BrokerConfig) -> Result<Self, BrokerError> {
        Err(BrokerError::UnsupportedScheme { url: url.into() })
    }
    pub async fn receive(&mut self, _m: usize) -> Result<Vec<Message>, BrokerError> {
        Ok(vec![])
    }
    pub async fn ack(&mut self, _t: &[AckToken]) -> Result<(), BrokerError> {
        Ok(())
    }
    pub async fn dead_letter(&mut self, _m: &Message, _r: &str) -> Result<(), BrokerError> {
        Ok(())
    }
    pub async fn ping(&mut self) -> Result<(), BrokerError> {
        Ok(())
    }
    pub fn stats(&self) -> ConsumerStats {
        ConsumerStats::default()
    }
    pub async fn close(self) {}
}
